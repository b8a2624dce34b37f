# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in
# all copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL
# THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
# THE SOFTWARE.

"""
The demo report's HTML page: one function per section, each returning its lines.

Numbers in the page carry ``id``/``data-*`` attributes so tests can read them back.
"""
import html
import json

import numpy as np

from sam2real_ros.common.io_utils import atomic_write_bytes
from sam2real_ros.demo.report_images import OUTLINED


def _fmt(value, spec='.3f'):
    return 'n/a' if value is None or value != value else format(value, spec)


VARIANT_LABELS = (('synthetic_only', 'synthetic only'), ('full', 'full (SAM reg.)'))


STYLE = (
    'body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}',
    'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;'
    'text-align:left}img{max-width:100%;border:1px solid #ddd}.note{color:#555}'
    '.verdict{background:#f4f4ec;border-left:4px solid #aa9;padding:.5em 1em}')


def write_html(path, s):
    """
    Write the report page; ``s`` is the demo summary dict (see :func:`build`).

    Keys used: ``episodes`` (list of dicts ``image``, ``id``, ``frames``, ``phases``,
    ``segments``), ``segmenter``, ``train`` (``seeds``, ``runs`` list of per-run dicts,
    ``paired``, ``verdict``, ``mean``, ``separation``), ``eval_frames``, ``background_miou`` /
    ``background_fraction``, ``predictions`` / ``curves`` (image file names or None),
    ``classes`` (``[(name, [r, g, b])]``), ``node`` (:meth:`NodeGraph.measure`), ``stages``
    (``[(name, seconds)]``), ``config`` (dict). One function per section, each returning its
    HTML lines.
    """
    parts = (html_head(s) + episodes_section(s) + training_section(s) + predictions_section(s)
             + separation_section(s) + node_section(s) + adaptation_section(s)
             + stages_section(s)
             + ['</body></html>'])
    atomic_write_bytes(path, '\n'.join(parts).encode())


def html_head(s):
    """Return the page head, title and the run's note."""
    e = html.escape
    return [
        '<!doctype html><html><head><meta charset="utf-8"><title>sam2real demo</title><style>',
        *STYLE,
        '</style></head><body>',
        '<h1>sam2real demo: the whole loop on a simulated robot</h1>',
        f'<p class="note">Run folder <code>{e(s["out"])}</code>, {e(s["started"])}; '
        f'{e(s["machine"])}. Random-weight tiny model, a few minutes of CPU training: the '
        'numbers show that the loop works, not what the method reaches at full scale.</p>']


def episodes_section(s):
    """Return section 1: the recorded episodes with their segment outlines."""
    e = html.escape
    segs = [n for ep in s['episodes'] for n in ep.get('segments', [])]
    seg_text = (f'{min(segs)}-{max(segs)} segments per frame (mean {np.mean(segs):.0f})'
                if segs else 'no segments')
    parts = [
        '<h2>1. Captured grasp episodes</h2>',
        f'<p>The grasp recorder stored {sum(ep["frames"] for ep in s["episodes"])} frames '
        f'in {len(s["episodes"])} episodes around the simulated grasps. The camera looks at '
        f'one tabletop (scene {s["config"]["scene"]}, procedural "real" appearance, '
        f'{s["config"]["camera_rate"]:g} Hz): in each grasp a gripper takes the nearest '
        'object off the table, and between grasps the head camera moves a little. Top row: '
        'frames with their phase (<b style="color:#3070d0">before</b>: the object on the '
        'table, <b style="color:#d08010">during</b>: the gripper closing on it and lifting it, '
        '<b style="color:#40a040">after</b>: the object gone). Bottom row: the outlines of the '
        f'{OUTLINED} largest segments the SAM worker ({e(s["segmenter"])}) found in that frame '
        f'({seg_text}); these segments are what the SAM loss trains on.</p>',
    ]
    for k, ep in enumerate(s['episodes']):
        phases = ', '.join(f'{n} {ph}' for ph, n in ep['phases'].items())
        parts.append(f'<h3>Episode {k + 1} <small class="note">{e(ep["id"])}: '
                     f'{ep["frames"]} frames ({e(phases)})</small></h3>'
                     f'<img src="{e(ep["image"])}" alt="episode {k + 1}">')
    return parts


def training_section(s):
    """Return section 2: per-seed mIoU of both variants, paired differences, verdict, curves."""
    e = html.escape
    t, p = s['train'], s['train']['paired']
    runs = {(r['variant'], r['seed']): r for r in t['runs']}
    first = runs[('full', t['seeds'][0])]
    parts = [
        '<h2>2. Synthetic only vs SAM-regularized training</h2>',
        f'<p>Each variant trained with {len(t["seeds"])} seeds ({first["iterations"]} '
        f'iterations in {first["epochs"]} epochs each). The same seed gives both variants the '
        'same initialization and the same synthetic frames, so the difference of a pair is '
        'the effect of the SAM loss plus noise. <i>synthetic only</i>: supervised steps on '
        'procedural "synthetic" frames. <i>full</i>: each supervised step followed by a step of '
        'the SAM segment pooling loss (Eq. 6) on the recorded frames. mIoU (Eq. 8, background '
        f'included) of the EMA model on {s["eval_frames"]} held-out procedural "real" frames '
        '(same renderer as the camera, scenes the camera never shows). Background (table and '
        f'wall, {100 * s["background_fraction"]:.0f}% of the pixels of these frames) counts '
        f'as a class: predicting background everywhere scores {s["background_miou"]:.3f}.</p>',
        '<table><tr><th>seed</th><th>synthetic only</th><th>full (SAM reg.)</th>'
        '<th>difference</th><th class="note">last epoch: synthetic only / full</th></tr>',
    ]
    for seed, d in zip(t['seeds'], p['diffs']):
        a, b = runs[('synthetic_only', seed)], runs[('full', seed)]
        parts.append(
            f'<tr><td>{seed}</td><td class="miou" data-variant="synthetic_only" '
            f'data-seed="{seed}">{_fmt(a["miou_last_k"], ".4f")}</td><td class="miou" '
            f'data-variant="full" data-seed="{seed}">{_fmt(b["miou_last_k"], ".4f")}</td>'
            f'<td class="diff" data-seed="{seed}">{d:+.4f}</td><td class="note">'
            f'{_fmt(a["miou"], ".4f")} / {_fmt(b["miou"], ".4f")}</td></tr>')
    parts += [
        f'<tr><td><b>mean</b></td><td>{t["mean"]["synthetic_only"]:.4f}</td>'
        f'<td>{t["mean"]["full"]:.4f}</td><td><b id="paired-mean">{p["mean"]:+.4f}</b> +- '
        f'<span id="paired-std">{_fmt(p["std"], ".4f")}</span></td><td></td></tr></table>',
        '<p class="note">mIoU per run: '
        + (f'mean of its last {first["k"]} epochs' if first['k'] != 1 else 'its last epoch')
        + ' (as the benchmark scores runs); +- is the standard deviation of the paired '
        'differences over seeds.</p>',
        f'<p class="verdict" id="verdict">{e(t["verdict"])}</p>',
    ]
    if s.get('curves'):
        parts.append(f'<p><img src="{e(s["curves"])}" alt="mIoU per epoch" '
                     'style="width:560px"></p>')
    return parts


def predictions_section(s):
    """Return the predictions image of the first seed with the class colour legend."""
    e = html.escape
    if not s.get('predictions'):
        return []
    legend = ' '.join(
        f'<span style="white-space:nowrap"><span style="display:inline-block;'
        f'width:12px;height:12px;border:1px solid #888;background:rgb{tuple(c)}">'
        f'</span> {e(n)}</span>' for n, c in s['classes'])
    return [f'<h3>Predictions on held-out "real" frames (seed {s["train"]["seeds"][0]})</h3>',
            f'<img src="{e(s["predictions"])}" alt="predictions">',
            f'<p>{legend}</p>',
            '<p class="note">Label colours: one per class as above. Features: '
            'the D=3 dense feature head shown as RGB (each channel min-max scaled per '
            'frame).</p>']


def separation_section(s):
    """Return the table of :func:`separation_table` (do the features separate segments?)."""
    sep = s['train'].get('separation') or []
    if not sep:
        return []
    parts = [
        '<h3>Do the features do what the SAM loss asks?</h3>',
        f'<p>The loss asks the features to be constant inside a segment (Eq. 3-4) and '
        f'different between segments (Eq. 5). Measured on the {s["separation_frames"]} '
        "held-out frames above: <i>spread</i> is the mean RMS distance of a pixel's "
        'feature to the mean feature of its segment, <i>distance</i> the mean distance '
        "between two segments' mean features, and <i>ratio</i> = distance / spread "
        '(higher is better, scale-free). "Segments": what the segmenter finds in these '
        'frames (what the loss would see); "objects": the true objects of the ground '
        'truth (what one hopes the features separate).</p>',
        '<table><tr><th>run</th><th>segments: spread / distance</th><th>ratio</th>'
        '<th>objects: spread / distance</th><th>ratio</th></tr>']
    for r in sep:
        cells = ''
        for name in ('segments', 'objects'):
            sp, di, ra = r[name]
            cells += (f'<td>{_fmt(sp)} / {_fmt(di)}</td><td class="sep" data-run='
                      f'"{r["variant"]}_s{r["seed"]}" data-kind="{name}">{_fmt(ra, ".2f")}'
                      '</td>')
        parts.append(f'<tr><td>{html.escape(dict(VARIANT_LABELS)[r["variant"]])}, seed '
                     f'{r["seed"]}</td>{cells}</tr>')
    parts.append('</table>')
    return parts


def node_section(s):
    """Return section 3: the segmentation node's rate, latency and both kinds of drops."""
    e = html.escape
    node, rate = s['node'], s['config']['node_camera_rate']
    cam = node.get('camera_frames')
    parts = [
        '<h2>3. The segmentation node with the trained model</h2>',
        f'<p>The <i>full</i> model of seed {s["train"]["seeds"][0]} (EMA weights) exported to '
        f'ONNX (<code>{e(s["model"])}</code>) runs in <code>segmentation_node</code> on the '
        f'simulated camera (640x480 at {rate:g} Hz, so the rate cannot exceed {rate:g} '
        'labels/s).</p>',
        '<table>',
        f'<tr><td>labels received</td><td><span id="rate-hz">{node["hz"]:.2f}</span> '
        f'labels/s ({node["frames"]} in {s["config"]["seconds"]:g} s)</td></tr>',
        f'<tr><td>latency camera stamp -> labels received</td><td>p50 '
        f'{_fmt(node["latency_ms_p50"], ".0f")} ms, p95 {_fmt(node["latency_ms_p95"], ".0f")} '
        'ms</td></tr>',
        f'<tr><td>inference (node)</td><td>p50 {e(str(node["node"].get("inference_ms_p50", "?")))}'
        f' ms, backend {e(str(node["node"].get("backend", "?")))}</td></tr>',
    ]
    if cam is not None:
        parts += [
            f'<tr><td>camera frames published</td><td id="camera-frames">{cam}</td></tr>',
            f'<tr><td>never delivered to the node (lost or late in transport)</td>'
            f'<td id="undelivered">{node["undelivered"]}</td></tr>']
    else:
        parts += [
            '<tr><td>camera frames published / never delivered</td><td id="camera-frames-unknown">'
            "unknown: the report's listener received no camera_info in the window</td></tr>"]
    return parts + [
        "<tr><td>delivered but replaced in the node's newest-frame slot</td>"
        f'<td id="replaced">{node["dropped"]}</td></tr>',
        '</table>',
        '<p class="note">Two different drops: a frame can be <i>never delivered</i> (the '
        "camera published it, the node's subscription never got it: transport loss or a full "
        'queue), or be <i>delivered and replaced</i> (the node keeps only the newest frame; one '
        'that arrives while the model is busy replaces the waiting one, so the node always '
        'segments the latest image instead of falling behind). Counted over the measurement '
        'window.</p>']


def adaptation_section(s):
    """Return section 4: one round of the adaptation manager, its decision and ledger line."""
    ad = s.get('adaptation')
    if not ad or not ad.get('round'):
        return []
    e, line = html.escape, ad['round']
    m, boot = line['metrics'], (line.get('gate') or {}).get('real') or {}

    def row(name, key):
        dep, cand = m['deployed'][key], m['candidate'][key]
        if dep is None or cand is None:
            return ''
        return (f'<tr><td>{name}</td><td>{_fmt(dep["miou"])}</td><td>{_fmt(cand["miou"])}</td>'
                f'<td>{dep["frames"]}</td></tr>')
    return [
        '<h2>4. One round of the adaptation loop</h2>',
        '<p>The <i>synthetic only</i> model of seed '
        f'{s["train"]["seeds"][0]} plays the deployed model (version '
        f'{e(str(line["base_version"]))}); the adaptation manager fine-tuned a candidate '
        f'(version {e(str(line["candidate_version"]))}) from it with the <i>full</i> variant on '
        f'the {line["data"]["frames"]} recorded frames ({line["train"]["iterations"]} '
        'iterations), evaluated both exported models on the held-out "real" frames (the real '
        'gate, never trained on) and on synthetic validation frames, and decided '
        '(docs/adaptation.md).</p>',
        f'<p class="verdict">decision: <b id="adapt-decision">{e(line["decision"])}</b> -- '
        f'{e(line["reason"])}</p>',
        '<table><tr><th>gate set</th><th>deployed mIoU</th><th>candidate mIoU</th>'
        '<th>frames</th></tr>', row('real gate', 'real'),
        row('synthetic validation', 'synthetic'), '</table>',
        f'<p class="note">Paired bootstrap over the real gate frames: mean difference '
        f'{_fmt(boot.get("mean_diff"), "+.4f")}, {_fmt(100 * line["gate"]["confidence"], ".0f")}'
        f' % lower bound {_fmt(boot.get("lower"), "+.4f")} (margin '
        f'{line["gate"]["real_margin"]:g}). The ledger line '
        f'(<code>{e(ad["ledger"])}</code>):</p>',
        '<pre style="white-space:pre-wrap;font-size:80%">'
        f'{e(json.dumps(line, sort_keys=True))}</pre>']


def stages_section(s):
    """Return the wall time per stage and where the logs, runs and data are."""
    parts = ['<h2>Stages</h2><table><tr><th>stage</th><th>wall time</th></tr>']
    parts += [f'<tr><td>{html.escape(name)}</td><td>{sec:.0f} s</td></tr>'
              for name, sec in s['stages']]
    total = sum(sec for _, sec in s['stages'])
    parts.append(f'<tr><td><b>total</b> (before writing this report)</td><td><b>{total:.0f} s'
                 '</b></td></tr></table>')
    parts.append('<p class="note">Logs of every process: <code>logs/</code>; training runs: '
                 '<code>train/&lt;variant&gt;_s&lt;seed&gt;</code> (checkpoint, metrics.csv); '
                 'recorded data and masks: <code>data/</code>.</p>')
    return parts
