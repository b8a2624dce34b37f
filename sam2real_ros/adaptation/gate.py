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
The deployment gate: deploy a candidate only if it is not worse than the deployed model.

Two checks, both must pass (docs/adaptation.md):

* **real gate** (held-out labeled real frames, when the user has some): the per-frame mean IoU
  (Eq. 8 terms) of both models on the same frames is paired, ``d_i = cand_i - deployed_i``; a
  paired bootstrap (``samples`` resamples of the frames with replacement) gives the
  distribution of the mean difference. The check passes when its lower ``1 - confidence``
  quantile is ``>= -real_margin``: with probability ``confidence`` the candidate is at most
  ``real_margin`` worse. Few or noisy gate frames widen the interval, so a candidate is then
  deployed only when it is clearly not worse.
* **synthetic validation** (always: the forgetting check): the candidate's mIoU may be at most
  ``synthetic_margin`` below the deployed model's.

A metric that is not finite (a diverged candidate) fails its check.
"""
import math

import numpy as np


def paired_bootstrap(candidate, deployed, samples=1000, confidence=0.95, seed=0):
    """
    Paired bootstrap of the mean per-frame difference ``candidate - deployed``.

    Arguments:
    ---------
      candidate (dict): frame key -> the candidate's per-frame score (float).
      deployed (dict): frame key -> the deployed model's score; only keys in both are paired.
      samples (int): bootstrap resamples (>= 1).
      confidence (float): in (0, 1); the returned ``lower`` is the ``1 - confidence`` quantile.
      seed (int): seed of the resampling (the gate's result is reproducible).

    Returns
    -------
      dict: ``frames`` (paired frames), ``mean_diff`` (the observed mean difference),
      ``lower`` / ``upper`` (the ``1 - confidence`` and ``confidence`` quantiles of the
      resampled mean differences); NaN values when no frame pairs.

    """
    keys = sorted(set(candidate) & set(deployed))
    if not keys:
        nan = float('nan')
        return {'frames': 0, 'mean_diff': nan, 'lower': nan, 'upper': nan}
    d = np.array([float(candidate[k]) - float(deployed[k]) for k in keys], np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(int(samples), len(d)))
    means = d[idx].mean(axis=1)
    return {'frames': len(keys), 'mean_diff': float(d.mean()),
            'lower': float(np.quantile(means, 1.0 - confidence)),
            'upper': float(np.quantile(means, confidence))}


def _finite(*values):
    return all(v is not None and math.isfinite(v) for v in values)


def decide(candidate, deployed, real_margin=0.02, synthetic_margin=0.02, samples=1000,
           confidence=0.95, seed=0):
    """
    Apply the gate to the evaluations of both models.

    Arguments:
    ---------
      candidate, deployed (dict): ``{'synthetic': summary, 'real': summary or None}`` where a
        summary is ``training.evaluate.evaluate(..., keep_frames=True)`` output (``miou``,
        ``frame_scores``).
      real_margin, synthetic_margin (float): the mIoU the candidate may lose (>= 0).
      samples, confidence, seed: of :func:`paired_bootstrap`.

    Returns
    -------
      (bool, str, dict): deploy or not, the reason in one line, and the gate's figures
      (``real``: bootstrap result or None, ``synthetic_diff``).

    """
    info = {'real': None, 'synthetic_diff': None, 'real_margin': real_margin,
            'synthetic_margin': synthetic_margin, 'confidence': confidence,
            'bootstrap_samples': samples}
    reasons = []
    ok = True
    cr, dr = candidate.get('real'), deployed.get('real')
    if cr is not None and dr is not None:
        boot = paired_bootstrap(cr['frame_scores'], dr['frame_scores'], samples, confidence,
                                seed)
        info['real'] = boot
        if not _finite(boot['lower'], cr['miou']):
            ok = False
            reasons.append('real gate: no finite paired score')
        elif boot['lower'] < -real_margin:
            ok = False
            reasons.append(f'real gate mIoU {cr["miou"]:.4f} vs deployed {dr["miou"]:.4f}: '
                           f'{confidence:.0%} lower bound of the difference '
                           f'{boot["lower"]:+.4f} < -{real_margin:g} over {boot["frames"]} '
                           f'frames')
        else:
            reasons.append(f'real gate mIoU {cr["miou"]:.4f} vs deployed {dr["miou"]:.4f} '
                           f'(lower bound {boot["lower"]:+.4f} >= -{real_margin:g}, '
                           f'{boot["frames"]} frames)')
    else:
        reasons.append('no real gate set (synthetic validation only)')
    cs, ds = candidate['synthetic']['miou'], deployed['synthetic']['miou']
    if not _finite(cs, ds):
        ok = False
        reasons.append(f'synthetic validation mIoU not finite (candidate {cs}, deployed {ds})')
    else:
        diff = cs - ds
        info['synthetic_diff'] = diff
        if diff < -synthetic_margin:
            ok = False
            reasons.append(f'synthetic validation mIoU {cs:.4f} vs deployed {ds:.4f}: '
                           f'{diff:+.4f} < -{synthetic_margin:g} (forgetting)')
        else:
            reasons.append(f'synthetic validation mIoU {cs:.4f} vs deployed {ds:.4f} '
                           f'({diff:+.4f} >= -{synthetic_margin:g})')
    verdict = 'not worse: deployed' if ok else 'worse: kept the deployed model'
    return ok, f'{verdict}; ' + '; '.join(reasons), info
