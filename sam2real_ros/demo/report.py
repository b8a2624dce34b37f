"""
The demo's report: PNG images and one HTML page (``<run>/report.html``, images next to it).

Images (all HxWx3 uint8 RGB, written atomically with :func:`io_utils.atomic_write_png`):
``episode_<k>.png`` (a recorded episode: frames with their phase, then the SAM worker's segments
as coloured overlays), ``predictions.png`` (held-out "real" frames: input, ground truth, the
synthetic-only and the SAM-regularized model's labels and dense features), ``curves.png``
(mIoU per epoch of both runs). Numbers in the HTML carry ``id``/``data-*`` attributes so tests
can read them back.
"""
import html
import os

import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_bytes, atomic_write_png
from sam2real_ros.inference.visual import colorize_labels, features_to_rgb

TILE = (120, 160)  # (h, w) of one image tile
PHASE_COLOURS = {'before': (80, 160, 255), 'during': (255, 170, 40), 'after': (90, 210, 90)}


def _tile(img, interp=cv2.INTER_AREA):
    return cv2.resize(np.ascontiguousarray(img), (TILE[1], TILE[0]), interpolation=interp)


def _caption(img, text, colour=(255, 255, 255)):
    """Return ``img`` with a dark caption band on top holding ``text``."""
    out = img.copy()
    out[:16] = (out[:16] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out


def mask_overlay(rgb, masks, alpha=0.6, seed=0):
    """
    Colour every segment (largest first, so nested smaller ones stay visible) over ``rgb``.

    Arguments:
    ---------
        rgb (np.ndarray): HxWx3 uint8.
        masks (np.ndarray): NxHxW bool (overlapping allowed).
        alpha (float): weight of the segment colours.
        seed (int): colour draw.

    Returns
    -------
        (np.ndarray): HxWx3 uint8; pixels in no segment keep the (darkened) image.

    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 256, (len(masks), 3)).astype(np.uint8)
    paint = np.zeros_like(rgb)
    covered = np.zeros(rgb.shape[:2], bool)
    for i in np.argsort([-int(m.sum()) for m in masks]):
        paint[masks[i]] = colours[i]
        covered |= masks[i]
    out = (rgb * 0.5).astype(np.uint8)
    blend = (rgb.astype(np.float32) * (1 - alpha) + paint * alpha).astype(np.uint8)
    out[covered] = blend[covered]
    return out


def episode_image(data_root, episode, max_frames=8):
    """
    Two rows for one episode: frames with phase captions, and their segment overlays.

    Arguments:
    ---------
        data_root (str): recorder dataset root (``masks/`` holds the mask store).
        episode (dict): an :func:`episode_store.list_episodes` entry (``dir`` is its folder).
        max_frames (int): frames shown, spread evenly over the episode.

    Returns
    -------
        (np.ndarray, int, dict): image HxWx3 uint8, frames in the episode, phase counts.

    """
    from sam2real_ros.common.io_utils import read_rgb
    from sam2real_ros.recording import episode_store
    from sam2real_ros.sam.mask_store import MaskStore
    store = MaskStore(os.path.join(data_root, 'masks'))
    eid = os.path.basename(os.path.normpath(episode['dir']))
    frames = [f for f in episode_store.iter_frames(data_root) if f.episode_id == eid]
    phases = {}
    for f in frames:
        phases[f.phase] = phases.get(f.phase, 0) + 1
    pick = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round()
                     .astype(int)) if frames else []
    top, bottom = [], []
    for i in pick:
        f = frames[i]
        rgb = read_rgb(f.image_path)
        top.append(_caption(_tile(rgb), f'{i + 1}: {f.phase}', PHASE_COLOURS.get(f.phase)))
        if store.status(f.key) == 'done':
            masks = store.read(f.key).masks()
            h, w = masks.shape[1:]  # nearest-neighbour to the tile size before colouring
            ys = (np.arange(TILE[0]) * h) // TILE[0]
            xs = (np.arange(TILE[1]) * w) // TILE[1]
            small = masks[:, ys][:, :, xs]
            seg = _caption(mask_overlay(_tile(rgb), small, seed=i), f'{len(masks)} segments')
        else:
            seg = _caption(np.zeros((*TILE, 3), np.uint8), 'no masks')
        bottom.append(seg)
    if not top:
        return np.zeros((*TILE, 3), np.uint8), 0, phases
    gap = np.full((TILE[0] * 2, 2, 3), 255, np.uint8)
    cols = [np.concatenate([t, b], 0) for t, b in zip(top, bottom)]
    row = [c for col in cols for c in (col, gap)][:-1]
    return np.concatenate(row, 1), len(frames), phases


PRED_COLUMNS = ('input', 'ground truth', 'synthetic only', 'full (SAM reg.)',
                'features: syn. only', 'features: full')


def prediction_image(samples, preds_syn, preds_full):
    """
    Rows of held-out frames: input, ground truth, both models' labels and features.

    Arguments:
    ---------
        samples (list[dict]): labeled samples (``rgb`` HxWx3 uint8, ``labels`` HxW uint8).
        preds_syn, preds_full (list): :class:`engine.Prediction` per sample (labels HxW uint8,
            features HxWxD float32).

    Returns
    -------
        (np.ndarray): HxWx3 uint8 with a title row; each label tile is captioned with that
        frame's mIoU (Eq. 8 over the classes present).

    """
    from sam2real_ros.training.metrics import frame_ious
    header = np.full((20, TILE[1] * len(PRED_COLUMNS), 3), 255, np.uint8)
    for k, title in enumerate(PRED_COLUMNS):
        cv2.putText(header, title, (k * TILE[1] + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for s, ps, pf in zip(samples, preds_syn, preds_full):
        def lab(p):
            ious = frame_ious(p.labels, s['labels'])
            score = np.mean(list(ious.values())) if ious else float('nan')
            return _caption(_tile(colorize_labels(p.labels), cv2.INTER_NEAREST),
                            f'mIoU {score:.2f}')
        tiles = [_tile(s['rgb']), _tile(colorize_labels(s['labels']), cv2.INTER_NEAREST),
                 lab(ps), lab(pf), _tile(features_to_rgb(ps.features)),
                 _tile(features_to_rgb(pf.features))]
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def curves_image(path, runs):
    """Plot mIoU per epoch of each run to ``path`` (PNG); ``runs`` maps label -> metrics rows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.ticker
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.0, 3.0), dpi=100)
    for label, rows in runs.items():
        ax.plot([r['epoch'] for r in rows], [r['miou'] for r in rows], marker='o', label=label)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel('epoch')
    ax.set_ylabel('mIoU (Eq. 8), held-out "real" frames')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    atomic_write_png(path, img)


def _fmt(value, spec='.3f'):
    return 'n/a' if value is None or value != value else format(value, spec)


def write_html(path, s):
    """
    Write the report page; ``s`` is the demo summary dict (see ``demo.py``).

    Keys used: ``episodes`` (list of dicts ``image``, ``id``, ``frames``, ``phases``),
    ``segmenter``, ``train`` (``{variant: {miou, miou_last_k, epochs, iterations}}``),
    ``eval_frames``, ``background_miou`` / ``background_fraction`` (all-background baseline),
    ``predictions`` / ``curves`` (image file names or None), ``classes``
    (``[(name, [r, g, b])]``), ``node`` (rate
    dict of :meth:`NodeGraph.measure`), ``stages`` (``[(name, seconds)]``), ``config`` (dict).
    """
    e = html.escape
    t = s['train']
    syn, full = t['synthetic_only'], t['full']
    diff = full['miou'] - syn['miou']
    node = s['node']
    parts = [
        '<!doctype html><html><head><meta charset="utf-8"><title>sam2real demo</title><style>',
        'body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}',
        'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;'
        'text-align:left}img{max-width:100%;border:1px solid #ddd}.note{color:#555}'
        '',
        '</style></head><body>',
        '<h1>sam2real demo: the whole loop on a simulated robot</h1>',
        f'<p class="note">Run folder <code>{e(s["out"])}</code>, {e(s["started"])}; '
        f'{e(s["machine"])}. Random-weight tiny model, a few minutes of CPU training: the '
        'numbers show that the loop works, not what the method reaches at full scale.</p>',
        '<h2>1. Captured grasp episodes</h2>',
        f'<p>The grasp recorder stored {sum(ep["frames"] for ep in s["episodes"])} frames '
        f'in {len(s["episodes"])} episodes around the simulated grasps (camera: procedural '
        f'"real" appearance, {s["config"]["num_frames"]} distinct scenes cycled at '
        f'{s["config"]["camera_rate"]:g} Hz, so consecutive frames show different scenes). '
        f'Top row: frames with their phase (<b style="color:#3070d0">before</b>, '
        f'<b style="color:#d08010">during</b>, <b style="color:#40a040">after</b> the grasp); '
        f'bottom row: the SAM worker\'s segments ({e(s["segmenter"])}), one colour per '
        f'segment, smaller segments drawn over the larger ones that contain them.</p>',
    ]
    for k, ep in enumerate(s['episodes']):
        phases = ', '.join(f'{n} {p}' for p, n in ep['phases'].items())
        parts.append(f'<h3>Episode {k + 1} <small class="note">{e(ep["id"])}: '
                     f'{ep["frames"]} frames ({e(phases)})</small></h3>'
                     f'<img src="{e(ep["image"])}" alt="episode {k + 1}">')
    parts += [
        '<h2>2. Synthetic only vs SAM-regularized training</h2>',
        f'<p>Same seed, data and number of iterations ({full["iterations"]} iterations in '
        f'{full["epochs"]} epochs). <i>synthetic only</i>: supervised steps on procedural '
        '"synthetic" frames. <i>full</i>: each supervised step followed by a step of the SAM '
        'segment pooling loss (Eq. 6) on the recorded frames. mIoU (Eq. 8, background '
        f'included) of the EMA model on {s["eval_frames"]} held-out procedural "real" frames '
        '(same renderer as the camera, seeds the camera does not use). Background (table and '
        f'wall, {100 * s["background_fraction"]:.0f}% of the pixels of these frames) counts '
        f'as a class: predicting background everywhere scores {s["background_miou"]:.3f}.</p>',
        '<table><tr><th>variant</th><th>mIoU, last epoch</th>'
        f'<th>mean of last {full["k"]} epochs</th></tr>',
    ]
    for name, label in (('synthetic_only', 'synthetic only'), ('full', 'full (SAM reg.)')):
        r = t[name]
        parts.append(f'<tr><td>{label}</td><td class="miou" data-variant="{name}">'
                     f'{_fmt(r["miou"], ".4f")}</td><td>{_fmt(r["miou_last_k"], ".4f")}</td>'
                     '</tr>')
    parts.append(f'<tr><td>difference (full - synthetic only)</td><td>{diff:+.4f}</td>'
                 f'<td>{full["miou_last_k"] - syn["miou_last_k"]:+.4f}</td></tr></table>')
    if s.get('curves'):
        parts.append(f'<p><img src="{e(s["curves"])}" alt="mIoU per epoch" '
                     'style="width:500px"></p>')
    if s.get('predictions'):
        parts += ['<h3>Predictions on held-out "real" frames</h3>',
                  f'<img src="{e(s["predictions"])}" alt="predictions">',
                  '<p>' + ' '.join(
                      f'<span style="white-space:nowrap"><span style="display:inline-block;'
                      f'width:12px;height:12px;border:1px solid #888;background:rgb{tuple(c)}">'
                      f'</span> {e(n)}</span>' for n, c in s['classes']) + '</p>',
                  '<p class="note">Label colours: one per class as above. Features: '
                  'the D=3 dense feature head shown as RGB (each channel min-max scaled per '
                  'frame); the SAM loss asks features to be constant inside a segment and '
                  'different between segments.</p>']
    parts += [
        '<h2>3. The segmentation node with the trained model</h2>',
        f'<p>The <i>full</i> model (EMA weights) exported to ONNX '
        f'(<code>{e(s["model"])}</code>) runs in <code>segmentation_node</code> on the '
        f'simulated camera (640x480 at {s["config"]["node_camera_rate"]:g} Hz, so the rate '
        f'cannot exceed {s["config"]["node_camera_rate"]:g} labels/s; the node drops frames '
        'that arrive while it is busy and segments the newest one).</p>',
        '<table>',
        f'<tr><td>labels received</td><td><span id="rate-hz">{node["hz"]:.2f}</span> '
        f'labels/s ({node["frames"]} in {s["config"]["seconds"]:g} s)</td></tr>',
        f'<tr><td>latency camera stamp -> labels received</td><td>p50 '
        f'{_fmt(node["latency_ms_p50"], ".0f")} ms, p95 {_fmt(node["latency_ms_p95"], ".0f")} '
        'ms</td></tr>',
        f'<tr><td>inference (node)</td><td>p50 {e(str(node["node"].get("inference_ms_p50", "?")))}'
        f' ms, backend {e(str(node["node"].get("backend", "?")))}</td></tr>',
        f'<tr><td>camera frames dropped by the node</td><td>{node["dropped"]}</td></tr>',
        '</table>',
        '<h2>Stages</h2><table><tr><th>stage</th><th>wall time</th></tr>',
    ]
    for name, sec in s['stages']:
        parts.append(f'<tr><td>{e(name)}</td><td>{sec:.0f} s</td></tr>')
    total = sum(sec for _, sec in s['stages'])
    parts.append(f'<tr><td><b>total</b> (before writing this report)</td><td><b>{total:.0f} s'
                 '</b></td></tr></table>')
    parts.append('<p class="note">Logs of every process: <code>logs/</code>; training runs: '
                 '<code>train/synthetic_only</code>, <code>train/full</code> (checkpoint, '
                 'metrics.csv); recorded data and masks: <code>data/</code>.</p></body></html>')
    atomic_write_bytes(path, '\n'.join(parts).encode())


def background_baseline(train):
    """
    Return ``(mIoU of predicting background everywhere, background pixel fraction)``.

    Computed over the ``train['eval_frames']`` evaluation frames the trainers score.
    """
    from sam2real_ros.data import datasets
    from sam2real_ros.training.metrics import MeanIoU
    ds = datasets.build_labeled(train['eval'])
    acc, fractions = MeanIoU(), []
    for i in range(min(train['eval_frames'], len(ds))):
        gt = ds[i]['labels']
        acc.update(np.zeros_like(gt), gt)
        fractions.append(float(np.mean(gt == 0)))
    return acc.compute(), float(np.mean(fractions))


def predictions(train, frames=4):
    """
    Predict the first ``frames`` eval frames with both checkpoints (deployed engine path).

    Returns
    -------
        (list, list, list, list): samples, synthetic-only and full predictions, class names.

    """
    from sam2real_ros.data import datasets
    from sam2real_ros.inference.engine import SegmentationEngine
    ds = datasets.build_labeled(train['eval'])
    samples = [ds[i] for i in range(min(frames, len(ds)))]
    out = []
    for v in ('synthetic_only', 'full'):
        engine = SegmentationEngine.load(train[v]['checkpoint'], backend='torch', device='cpu')
        out.append([engine.predict(s['rgb']) for s in samples])
    return samples, out[0], out[1], list(engine.class_names)


def build(args, episodes, train, model, node, stages, started, load):
    """
    Write every image, ``report.html`` and ``summary.json`` into ``args.out``.

    Returns
    -------
        (dict): the summary (``report`` is the HTML path).

    """
    out = args.out
    eps = []
    for k, ep in enumerate(episodes):
        img, n, phases = episode_image(os.path.join(out, 'data'), ep)
        name = f'episode_{k + 1}.png'
        atomic_write_png(os.path.join(out, name), img)
        eps.append({'image': name, 'id': os.path.basename(os.path.normpath(ep['dir'])),
                    'frames': n, 'phases': phases})
    samples, syn, full, names = predictions(train)
    bg_miou, bg_fraction = background_baseline(train)
    atomic_write_png(os.path.join(out, 'predictions.png'), prediction_image(samples, syn, full))
    curves_image(os.path.join(out, 'curves.png'),
                 {'synthetic only': train['synthetic_only']['rows'],
                  'full (SAM reg.)': train['full']['rows']})
    s = {
        'out': out, 'started': started, 'report': os.path.join(out, 'report.html'),
        'machine': f'{os.cpu_count()} CPU cores, no GPU used, load average {load:.1f} at start',
        'episodes': eps, 'segmenter': args.segmenter, 'eval_frames': train['eval_frames'],
        'train': {v: {k: x for k, x in train[v].items() if k != 'rows'}
                  for v in ('synthetic_only', 'full')},
        'predictions': 'predictions.png', 'curves': 'curves.png', 'model': model,
        'background_miou': bg_miou, 'background_fraction': bg_fraction,
        'classes': [(n, [int(x) for x in colorize_labels(np.array([[i]], np.uint8))[0, 0]])
                    for i, n in enumerate(names)],
        'node': node, 'stages': list(stages),
        'config': {'num_frames': args.scenes, 'camera_rate': 10.0, 'node_camera_rate': 30.0,
                   'seconds': args.seconds, 'grasps': args.grasps},
    }
    write_html(s['report'], s)
    from sam2real_ros.common.io_utils import atomic_write_json
    atomic_write_json(os.path.join(out, 'summary.json'), s)
    return s
