"""The names of the columns the experiments write: one registry.

Every column of the report's tables (:mod:`gntk_fast.experiments.sections`),
of the sweep tasks' rows (:mod:`gntk_fast.experiments.tasks`) and of the
summaries the claims and figures compute from them is named here once, with
its meaning in one line. A quantity has one name wherever it appears (the
RMS distance between two step graphons is ``rms`` in the graphon-convergence
table, the conv table and the limit-graphon tables; a kernel's top-5 energy is
``energy_top5`` in the study's table and in a sweep's rows), and a name means
one quantity.

Two kinds of names:

* ``key``: what identifies a row or the setting it was measured at (method,
  width, seed, layer, kernel, ...);
* ``metric``: what was measured (a distance, a spectral metric, a loss, a
  fitted slope, ...).

The module-level constants (``ENERGY_TOP5 = "energy_top5"``, ...) are the
names themselves; code that writes or reads a metric column uses them.
:func:`check_columns` raises on a column that is not registered.

Examples
--------
>>> from gntk_fast.experiments.metrics import ENERGY_TOP5, meaning
>>> ENERGY_TOP5
'energy_top5'
>>> meaning("rms")
'RMS over blocks (or coordinates) of the difference between two step graphons (or two density maps)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ["Name", "NAMES", "KEYS", "METRICS", "meaning", "unknown_columns", "check_columns"]


@dataclass(frozen=True)
class Name:
    """One registered column name: the name, its kind ("key" or "metric") and its meaning."""

    name: str
    kind: str
    meaning: str


NAMES: dict[str, Name] = {}


def _add(name: str, kind: str, text: str) -> str:
    if name in NAMES:  # pragma: no cover - a registry error
        raise RuntimeError(f"column name {name!r} registered twice")
    NAMES[name] = Name(name, kind, text)
    return name


def _key(name: str, text: str) -> str:
    return _add(name, "key", text)


def _metric(name: str, text: str) -> str:
    return _add(name, "metric", text)


# ------------------------------------------------------------------ keys
METHOD = _key("method", "pruning method (or a label of a pruned/designed variant)")
SPARSITY = _key("sparsity", "fraction of weights pruned away (the pruner's target)")
SEED = _key("seed", "seed of the network, its pruning and training")
TRIAL = _key("trial", "index of an independent network at the same setting")
WIDTH = _key("width", "hidden-layer width n")
WIDTHS = _key("widths", "the widths a fitted slope runs over (a list)")
CHANNELS = _key("channels", "channel count of the conv layers (a list in a summary over channel counts)")
WIDEST = _key("widest", "the widest width / channel count: the reference a distance is taken to")
DEPTH = _key("depth", "number of hidden layers")
LAYER = _key("layer", "mask index (0 = input layer); None on a network-level row")
SCOPE = _key("scope", "pruning scope: global or layerwise")
KERNEL = _key("kernel", "which kernel: entk_pruned/entk_fresh/gntk_mask/gntk_variance, or eNTK/analytic")
TRAINABLE = _key("trainable", 'which weights an NTK differentiates: "mask" (the kept ones) or "all"')
STEP = _key("step", "training step (number of updates done)")
METRIC = _key("metric", "the name of the metric a correlation row is about")
GRAPHON = _key("graphon", "the graphon masks were sampled from (a name or spec)")
READOUT = _key("readout", 'conv read-out: "flatten" or "gap"')
N_IMAGES = _key("n_images", "number of images a conv kernel is computed on")
NET = _key("net", "which network: pruned or the dense control")
TARGET = _key("target", "which target function: of the kept or of the pruned-away coordinates")
REFERENCE = _key("reference", 'what a prediction is compared with: "independent" networks or the "same network"')
PART = _key("part", "which part of the limit-graphon experiment a row belongs to")
OBJECTIVE = _key("objective", "the objective a graphon was designed for")
KIND = _key("kind", "the sweep task's kind")
TASK_ID = _key("task_id", "the sweep task's id (hash of its config)")
DATA = _key("data", "dataset name")
COMPAT = _key("compat", "pruning semantics: synaptic-flow (the paper's) or clean")
BLOCKS = _key("K", "SAS blocks per side of a step graphon")
SOURCE = _key("source", "where a sweep task's masks come from: pruned or generated packed")
LR = _key("lr", "learning rate")
BATCH_SIZE = _key("batch_size", "minibatch size")
BATCH = _key("batch", "number of examples a graphon was designed on")
POOL = _key("pool", "number of networks a pooled limit prediction averages")
N_NETWORKS = _key("n_networks", "number of networks a limit prediction was computed from")
N_OUT = _key("n_out", "rows of a mask (the layer's outputs)")
N_IN = _key("n_in", "columns of a mask (the layer's inputs)")
SEEDS = _key("seeds", "number of seeds a summary row averages")
PADDING = _key("padding", "a conv net's padding (\"circular\" or \"same\")")
INPUT_MASKS = _key("input_masks", "how graphon_cntk's input layer enters (\"mean\" or \"bernoulli\")")
NETS = _key("nets", "number of independent nets a row averages")

# ------------------------------------------------------------------ metrics: masks and graphons
DENSITY = _metric("density", "kept fraction of the weights of a mask, layer or network (the density c)")
KEPT = _metric("kept", "number of weights a mask keeps (as in the pruning report)")
DEAD_ROWS = _metric("dead_rows", "rows of a mask with no kept weight")
DEAD_COLS = _metric("dead_cols", "columns of a mask with no kept weight")
ROW_DEGREE_CV = _metric("row_degree_cv", "coefficient of variation of a mask's kept fan-in over its rows")
COL_DEGREE_CV = _metric("col_degree_cv", "coefficient of variation of a mask's kept fan-out over its columns")
H_MIN = _metric("H_min", "smallest block value of a SAS estimate")
H_MAX = _metric("H_max", "largest block value of a SAS estimate")
HIST = _metric("hist", "histogram distance sqrt(sum over blocks of squared differences) between two step graphons")
RMS = _metric("rms", "RMS over blocks (or coordinates) of the difference between two step graphons "
              "(or two density maps)")
CUT = _metric("cut", "cut norm of the difference between two step graphons (a lower bound unless exact)")
BLOCK_SD = _metric("block_sd", "standard deviation of a SAS estimate's block values")
NULL_SD = _metric("null_sd", "block sd of the same SAS of masks sampled from the constant graphon")
FLAT_BOUND = _metric("flat_bound", "the block sd a flat graphon's estimate stays below (1.5 x null_sd)")
SAS_TO_CONST = _metric("sas_to_const", "RMS distance of the SAS estimate to the constant graphon d")
PRED_TO_CONST = _metric("pred_to_const", "RMS distance of the predicted limit graphon to the constant graphon d")
PRED_ERROR = _metric("pred_error", "the pooled prediction's own error (sd over the pool / sqrt(pool), RMS)")
FIT_R2 = _metric("fit_r2", "R^2 of the Factorised Saliency Model's factor fit of a layer's saliencies")
INPUT_FIT_R2 = _metric("input_fit_r2", "R^2 of the factor fit of the input layer's saliencies")
CORR = _metric("corr", "Pearson r of the predicted and measured per-coordinate kept densities")
JACCARD = _metric("jaccard", "Jaccard index of the predicted and measured pruned-away input coordinates")
PRUNED_PRED = _metric("pruned_pred", "number of input coordinates the prediction prunes away (density < d/10)")
PRUNED_MEASURED = _metric("pruned_measured", "number of input coordinates the masks prune away (density < d/10)")
ERR_JOINT = _metric("err_joint", "relative L2 error of the joint network graphon's path densities vs finite counts")
ERR_PER_MASK = _metric("err_per_mask", "relative L2 error of the per-mask SAS path densities vs finite counts")
MEAN_FINITE = _metric("mean_finite", "mean finite path density over the input coordinates")
PATH_MEAN = _metric("path_mean", "mean per-coordinate path density P(j)")
PATH_CV = _metric("path_cv", "coefficient of variation of the path density P(j) over coordinates")
PATH_RELEVANCE_CORR = _metric("path_relevance_corr", "Pearson r of the path density P(j) with the class relevance")
KEPT_COORDS = _metric("kept_coords", "the input coordinates the predicted limit keeps (a list)")
PRUNED_COORDS = _metric("pruned_coords", "the input coordinates the predicted limit prunes away (a list)")
N_KEPT_COORDS = _metric("n_kept_coords", "number of input coordinates the predicted limit keeps")
N_PRUNED_COORDS = _metric("n_pruned_coords", "number of input coordinates the predicted limit prunes away")
DENSITY_KEPT = _metric("density_kept", "predicted kept density of each kept coordinate (a list)")
DENSITY_PRUNED = _metric("density_pruned", "predicted kept density of each pruned-away coordinate (a list)")
N_LOW_SCALE_PRUNED = _metric("n_low_scale_pruned", "pruned-away coordinates that are low-scale ones")
MEAN_KEPT = _metric("mean_kept", "first moment E[w m] of a layer's kept weights")
SECOND_KEPT = _metric("second_kept", "second moment E[w^2 m] of a layer's kept weights")
COHERENCE = _metric("coherence", "row coherence sqrt(n_in) rms_i(mean_j w_ij m_ij) / sqrt(E[w^2 m])")
OUT_SCALE = _metric("out_scale", "RMS of a layer's pre-activation over the dense net's")
COHERENCE_HIDDEN = _metric("coherence_hidden", "mean coherence over the hidden layers")
MEAN_KEPT_HIDDEN = _metric("mean_kept_hidden", "mean first moment of the kept weights over the hidden layers")
SECOND_KEPT_HIDDEN = _metric("second_kept_hidden", "mean second moment of the kept weights over the hidden layers")
OUT_SCALE_LAST = _metric("out_scale_last", "out_scale of the read-out layer")

# ------------------------------------------------------------------ metrics: kernels
ALPHA = _metric("alpha", "spectral decay exponent: minus the log-log slope of the eigenvalues against their index")
ALPHA_R2 = _metric("alpha_r2", "R^2 of the decay exponent's fit")
EFFECTIVE_RANK = _metric("effective_rank", "trace / lambda_1")
SPECTRAL_GAP = _metric("spectral_gap", "lambda_1 / lambda_2")
ENERGY_TOP5 = _metric("energy_top5", "share of the trace in the top 5 eigenvalues (energy concentration, k = 5)")
CONDITION_NUMBER = _metric("condition_number", "lambda_1 / lambda_N")
ALIGNMENT = _metric("alignment", "kernel-target alignment with the centred one-hot labels")
TRACE = _metric("trace", "trace of a kernel (the whole network's)")
LAMBDA_MAX = _metric("lambda_max", "largest eigenvalue of a kernel")
CLIPPED_EIGENVALUES = _metric("clipped_eigenvalues", "round-off negative eigenvalues clipped to 0")
LAYER_TRACE = _metric("layer_trace", "trace of one layer's part of the eNTK (the network's trace on its row)")
LAYER_TRACE_FRACTION = _metric("layer_trace_fraction", "layer_trace over the kernel's trace")
REL_DIST = _metric("rel_dist", "relative Frobenius distance ||K - K_ref|| / ||K_ref|| to the table's reference kernel")
REL_DIST_TO_A = _metric("rel_dist_to_a", "rel_dist to kernel (a), the pruned net's eNTK, of the same case")
SCALE_FREE_DIST_TO_A = _metric("scale_free_dist_to_a", "rel_dist to kernel (a) after the best scalar")
NTK_GEN_MEASURE = _metric("ntk_gen_measure", "NTK generalisation measure sqrt(2 tr(Y^T Theta^-1 Y) / N)")
ENTK_TRACE_RATIO = _metric("entk_trace_ratio", "eNTK trace over the dense net's")
RATIO = _metric("ratio", "sum of a pruned net's kernel entries over the dense net's")
PREDICTED_RATIO = _metric("predicted_ratio", "the ratio random pruning's scaling law predicts (c^(L+1) or c^L)")
EXPONENT = _metric("exponent", "fitted log-log exponent of the kernel ratio against the density")
PREDICTED_EXPONENT = _metric("predicted_exponent", "the exponent random pruning's scaling law predicts")
ERR_MEAN = _metric("err_mean", "rel_dist of the mean eNTK over nets to the analytic kernel")
SE_MEAN = _metric("se_mean", "sampling error of the mean eNTK (sd over nets / sqrt(nets), relative to the kernel)")
BIAS = _metric("bias", "estimated bias: sqrt(|err_mean^2 - se_mean^2|), signed like err_mean^2 - se_mean^2")
ERR_PER_NET = _metric("err_per_net", "mean over nets of each net's rel_dist to the analytic kernel")
ERR_PER_NET_SD = _metric("err_per_net_sd", "sd (ddof 1) over nets of each net's rel_dist to the analytic kernel")
SUM_RATIO = _metric("sum_ratio", "sum of the mean eNTK's entries over the analytic kernel's")

# ------------------------------------------------------------------ metrics: summaries over widths
MEAN_REL_DIST = _metric("mean_rel_dist", "mean rel_dist over seeds, per width or channel count (a list)")
SLOPE_REL_DIST = _metric("slope_rel_dist", "log-log slope of mean_rel_dist against width or channel count")
MEAN_RMS = _metric("mean_rms", "mean rms over layers and trials, per width or channel count (a list)")
SLOPE_RMS = _metric("slope_rms", "log-log slope of the (mean) rms against width or channel count")
SLOPE_CUT = _metric("slope_cut", "log-log slope of the mean cut distance against width")
SLOPE_SAS_TO_CONST = _metric("slope_sas_to_const", "log-log slope of the mean sas_to_const against width")

# ------------------------------------------------------------------ metrics: training
LOSS = _metric("loss", "training loss at a step (on the scored training examples)")
ACCURACY = _metric("accuracy", "training accuracy at a step (on the scored training examples)")
TRAIN_LOSS = _metric("train_loss", "final training loss (on the scored training examples)")
TRAIN_ACCURACY = _metric("train_accuracy", "final training accuracy (on the scored training examples)")
TEST_LOSS = _metric("test_loss", "final loss on held-out examples")
TEST_ACCURACY = _metric("test_accuracy", "final accuracy on held-out examples")
GENERALISATION_GAP = _metric("generalisation_gap", "test_loss - train_loss")
MEAN_TRAIN_LOSS_LAST10PCT = _metric("mean_train_loss_last10pct", "mean minibatch loss over the last 10% of steps")
EVAL_LOSS_CURVE = _metric("eval_loss_curve", "held-out loss at each of eval_steps (a list)")
EVAL_STEPS = _metric("eval_steps", "the steps held-out losses were scored at (a list)")
MASKS_ENFORCED = _metric("masks_enforced", "every pruned weight still exactly 0 after training")
TRAIN_R2 = _metric("train_r2", "R^2 of a trained net's fit on its training inputs")
TEST_R2 = _metric("test_r2", "R^2 of a trained net's fit on held-out inputs")
ETA = _metric("eta", "gradient-descent step size of the linearised comparison")
MEASURED_LOSS = _metric("measured_loss", "loss of the finite net under full-batch GD at a step")
PREDICTED_LOSS = _metric("predicted_loss", "loss the linearised model predicts at a step")
DIVERGED = _metric("diverged", "the finite net's GD run diverged")
INITIAL = _metric("initial", "a designed graphon's objective before the design")
FINAL = _metric("final", "a designed graphon's objective after the design")

# ------------------------------------------------------------------ metrics: statistics, timings
RHO = _metric("rho", "Spearman's rank correlation")
P_VALUE = _metric("p_value", "p-value of a test")
N = _metric("n", "number of configurations a statistic is over")
SECONDS = _metric("seconds", "wall time in seconds")
PREDICT_S = _metric("predict_s", "wall time of a limit prediction in seconds")

KEYS: tuple[str, ...] = tuple(n for n, v in NAMES.items() if v.kind == "key")
METRICS: tuple[str, ...] = tuple(n for n, v in NAMES.items() if v.kind == "metric")


def meaning(name: str) -> str:
    """The one-line meaning of the registered column ``name``.

    Examples
    --------
    >>> meaning("effective_rank")
    'trace / lambda_1'
    """
    if name not in NAMES:
        raise ValueError(f"name: {name!r} is not a registered column name")
    return NAMES[name].meaning


def unknown_columns(rows: Iterable[Mapping]) -> list[str]:
    """The column names of ``rows`` (dicts) that are not registered, sorted.

    Examples
    --------
    >>> unknown_columns([{"method": "snip", "alpha": 1.2, "alpha2": 0.0}])
    ['alpha2']
    """
    return sorted({str(k) for r in rows for k in r} - set(NAMES))


def check_columns(rows: Iterable[Mapping], where: str) -> None:
    """Raise ValueError naming ``where`` when a column of ``rows`` is not registered.

    Examples
    --------
    >>> check_columns([{"method": "snip", "energy_top5": 0.9}], "kernels")
    >>> check_columns([{"energy_concentration": 0.9}], "kernels")
    Traceback (most recent call last):
    ...
    ValueError: kernels: columns not in gntk_fast.experiments.metrics: ['energy_concentration']
    """
    bad = unknown_columns(rows)
    if bad:
        raise ValueError(f"{where}: columns not in gntk_fast.experiments.metrics: {bad}")
