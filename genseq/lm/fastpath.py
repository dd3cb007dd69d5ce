"""The sampler's CPU fast path: one LSTM step and one token draw over preallocated buffers.

`LSTMStep` gives the same logits as `LSTMLanguageModel.step` (in fp32; bf16 and int8 within
rounding) and `TokenSelector` the same distribution as `sampling.next_token_probs`
(tests/lm/test_fastpath.py compares them). Per step
no Python-side tensor is built and only the products' outputs are allocated: nn.LSTM's per-call
setup (weight checks, oneDNN weight reordering) costs more than the arithmetic at batch 1.
"""

from __future__ import annotations

import functools
import warnings

import torch

from genseq.lm.config import STEP_PRECISIONS
from genseq.lm.model import LSTMLanguageModel, State
from genseq.lm.runtime import cpu_supports_bf16

SIGMOID_TANH_MIN_BATCH = 8


def _input_dtype(precision: str) -> torch.dtype:
    """The dtype of h, the products' input: bf16 for the bf16 kernels and for int8 weights beside bf16
    activations; fp32 for fp32 and for int8 through fbgemm, which quantizes fp32 activations itself."""
    if precision == "bf16" or (precision == "int8" and int8_kernel() == "weight-only"):
        return torch.bfloat16
    return torch.float32


@functools.cache
def _onednn_linear_available(dtype: torch.dtype) -> bool:
    """Whether oneDNN's prepacked linear runs here in `dtype`: the build may lack it, and its bf16 path
    refuses CPUs without AVX-512. Tried once on a 2x2 product."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2, dtype=dtype), 1)
        product = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2, dtype=dtype), weight, None, "none", [], "")
    except RuntimeError:
        return False
    return bool((product == 2).all())


INT8_BLOCK = 16
"""PyTorch's weight-only int8 kernel reads the inner dimension in blocks of 16 with no tail: other
lengths give wrong sums or crash (torch 2.13, checked from 2 to 1,024). Such layers stay in bf16."""


@functools.cache
def _weight_only_int8_runs() -> bool:
    """Whether PyTorch's weight-only int8 kernel (bf16 activations; torch 2.3 and later) runs here."""
    try:
        weight, scale = torch.ones(2, INT8_BLOCK, dtype=torch.int8), torch.ones(2, dtype=torch.bfloat16)
        product = torch.ops.aten._weight_int8pack_mm(torch.ones(1, INT8_BLOCK, dtype=torch.bfloat16), weight, scale)
    except (AttributeError, RuntimeError):
        return False
    return bool((product == INT8_BLOCK).all())


def _int8_row_scales(weight: torch.Tensor, levels: int = 127) -> torch.Tensor:
    """The scale [out] that maps each output row of `weight` [out, in] onto -levels..levels."""
    return weight.abs().amax(1).clamp(min=1e-12) / levels


FBGEMM_WEIGHT_LEVELS = 63
"""fbgemm's int8 weights are rounded per output row to -63..63, not -127..127: on CPUs without VNNI it sums
pairs of u8 activation x s8 weight products in int16, which saturates past 32,767 (255 x 127 x 2 does; 255 x
63 x 2 = 32,130 does not). At 127 levels a 2048x512 product was off by up to 0.18 on outputs of ~2."""


class _FbgemmWeight:
    """`weight` [out, in] rounded per output row to int8 and packed for fbgemm's int8 x int8 product."""

    def __init__(self, weight: torch.Tensor):
        self.scale = _int8_row_scales(weight, FBGEMM_WEIGHT_LEVELS)
        self.rounded = torch.round(weight / self.scale[:, None]).to(torch.int8)
        self.row_sums = self.rounded.sum(1, dtype=torch.int32)
        self.zero_bias = torch.zeros(weight.shape[0])
        with warnings.catch_warnings():  # deprecated by PyTorch like all its fbgemm calls: see int8_kernel
            warnings.simplefilter("ignore", UserWarning)
            self.packed = torch.fbgemm_pack_quantized_matrix(self.rounded)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [batch, in] (fp32, rounded to 8 bits per call by fbgemm) @ weight.T, scaled back per row."""
        product = torch.fbgemm_linear_int8_weight_fp32_activation(
            inputs, self.rounded, self.packed, self.row_sums, 1.0, 0, self.zero_bias)
        return product.mul_(self.scale)


@functools.cache
def _fbgemm_runs() -> bool:
    """Whether fbgemm's int8 linear runs here. Tried once on a 2x2 product, which also spends PyTorch's
    one-time deprecation warnings while they are silenced."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            product = _FbgemmWeight(torch.ones(2, 2))(torch.ones(1, 2))
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.allclose(product, torch.full((1, 2), 2.0), rtol=0.02))


def int8_kernel() -> str | None:
    """The int8 kernel the fast step runs here, or None where neither runs.

    'weight-only' on CPUs with native bf16: int8 weights scaled into bf16 activations (fastest at small
    batches there). 'fbgemm' elsewhere, as on AVX2-only CPUs, where bf16 is emulated: weights and each
    step's activations rounded to 8 bits and multiplied as integers by fbgemm. The call is PyTorch's
    plain function (`torch.fbgemm_linear_int8_weight_fp32_activation`), not the quantized-tensor op
    (`quantized::linear_dynamic`): same kernel, but the op's call from Python costs ~25 us more, as much as
    the product at batch 1. Every fbgemm entry point is deprecated in favour of torchao, which runs int8
    on the CPU only through torch.compile (a C++ compiler at run time) or AVX-512 kernels; so this stays
    the native AVX2 path while PyTorch ships it, and the step falls back to fp32 the day it is gone.
    """
    if cpu_supports_bf16() and _weight_only_int8_runs():
        return "weight-only"
    return "fbgemm" if _fbgemm_runs() else None


def int8_available() -> bool:
    """Whether the fast step can run int8 weights here (see `int8_kernel`)."""
    return int8_kernel() is not None


def native_step_precisions() -> tuple[str, ...]:
    """The fast step's precisions this CPU runs natively: fp32; bf16 where the CPU has it; int8 where a kernel runs."""
    return tuple(p for p in STEP_PRECISIONS if p == "fp32" or (p == "bf16" and cpu_supports_bf16())
                 or (p == "int8" and int8_available()))


class _Product:
    """`inputs @ weight` with the weight [in, out] laid out once for the kernel that runs it fastest.

    fp32 and bf16: where PyTorch has oneDNN, the weight is reordered ahead of time for
    `batch_size` rows and the product runs as oneDNN's linear (at batch 1 in bf16 ~40 us for a
    1024x2048 layer, where torch.mm takes ~110 us in bf16 and ~90 us in fp32; at batch 64 in
    fp32 it avoids MKL's AVX2 path on AMD, 2.6x faster); elsewhere torch.mm into a reused buffer.
    int8 (`int8_kernel`): weights rounded per output row to int8. Weight-only: a bf16 scale, bf16
    inputs, PyTorch's weight-only kernel (a quarter of the fp32 bytes and a cheaper call); a layer
    whose input length is not a multiple of `INT8_BLOCK` runs in bf16 instead. fbgemm: `_FbgemmWeight`,
    fp32 inputs rounded per call. The result has the inputs' dtype.
    """

    def __init__(self, weight: torch.Tensor, batch_size: int, precision: str):
        weight = weight.T.float()  # [out, in]: the layout the kernels take
        dtype = _input_dtype(precision)
        kernel = int8_kernel() if precision == "int8" else None
        if kernel == "weight-only" and weight.shape[1] % INT8_BLOCK:
            kernel = None
        self.kind = kernel or ("onednn" if _onednn_linear_available(dtype) else "mm")
        if self.kind == "weight-only":
            scale = _int8_row_scales(weight)
            self.weight = torch.round(weight / scale[:, None]).to(torch.int8)
            self.scale = scale.to(dtype)
        elif self.kind == "fbgemm":
            self.weight = _FbgemmWeight(weight)
        elif self.kind == "onednn":
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.to(dtype).contiguous(), batch_size)
        else:
            self.weight = weight.T.to(dtype).contiguous()
            self.out = torch.empty(batch_size, weight.shape[0], dtype=dtype)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.kind == "weight-only":
            return torch.ops.aten._weight_int8pack_mm(inputs, self.weight, self.scale)
        if self.kind == "fbgemm":
            return self.weight(inputs)
        if self.kind == "onednn":
            return torch.ops.mkldnn._linear_pointwise(inputs, self.weight, None, "none", [], "")
        return torch.mm(inputs, self.weight, out=self.out)


def _gate_scale(hidden_size: int) -> torch.Tensor:
    """Doubles the cell-candidate gate rows: tanh(x) = 2 sigmoid(2x) - 1, so one sigmoid serves all four gates."""
    scale = torch.ones(4 * hidden_size)
    scale[2 * hidden_size : 3 * hidden_size] = 2.0
    return scale


class LSTMStep:
    """One step of a trained model for `batch_size` sequences: token ids [batch] -> logits [batch, vocab].

    Weights are copied once, with the two input matrices of each upper layer stacked so a layer
    is one matrix product, and layer 0's input product folded into a per-token table
    (embedding @ W_ih + biases). `precision` is that of the LSTM layers' products (see `_Product`);
    gates, cells, the output head and the logits stay fp32 (the head is small: in fp32 it costs
    3 us, through oneDNN's bf16 call 14). The returned logits tensor is reused by the next call.
    """

    def __init__(self, model: LSTMLanguageModel, batch_size: int, precision: str = "fp32"):
        if precision not in STEP_PRECISIONS:
            raise ValueError(f"precision must be one of {STEP_PRECISIONS}, got {precision!r}")
        if model.head.weight.device.type != "cpu":  # its kernels and buffers are the CPU's
            raise ValueError(f"LSTMStep runs on the CPU; this model is on {model.head.weight.device}: sample with "
                             "fast=False there, or move the model with .cpu()")
        lstm, hidden, layers = model.lstm, model.config.hidden_size, model.config.num_layers
        self.hidden_size, self.num_layers = hidden, layers
        dtype = _input_dtype(precision)
        scale = _gate_scale(hidden)[:, None]
        with torch.no_grad():
            bias0 = lstm.bias_ih_l0 + lstm.bias_hh_l0
            self.table = ((model.embedding.weight.float() @ lstm.weight_ih_l0.float().T + bias0) * scale.T).contiguous()
            self.products = [_Product((lstm.weight_hh_l0 * scale).T, batch_size, precision)]
            self.biases = [None]
            for layer in range(1, layers):
                stacked = torch.cat([getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")], 1)
                self.products.append(_Product((stacked * scale).T, batch_size, precision))
                bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
                self.biases.append((bias * scale[:, 0]).float())
            self.head_weight = model.head.weight.T.float().contiguous()
            self.head_bias = model.head.bias.float().clone()
        # h of every layer side by side, so layer l reads [h_{l-1} | h_l] as one contiguous-row matrix
        self.h = torch.zeros(batch_size, layers * hidden, dtype=dtype)
        self.c = torch.zeros(layers, batch_size, hidden)
        self.gates = torch.empty(batch_size, 4 * hidden)
        self.tanh_c = torch.empty(batch_size, hidden)
        # PyTorch's fp32 tanh runs ~5x slower than its sigmoid here (34 us against 7 for 64 x 512): for many
        # rows tanh(c) is taken as 2 sigmoid(2c) - 1, for a few the extra three small ops would cost more
        self.tanh_by_sigmoid = batch_size >= SIGMOID_TANH_MIN_BATCH
        self.last_h = torch.empty(batch_size, hidden)  # the head's fp32 input when h is kept in bf16
        self.logits = torch.empty(batch_size, model.config.vocab_size)
        # views made once: slicing costs a few microseconds a call, as much as the small ops themselves
        n = hidden
        self.h_views = [self.h[:, layer * n : (layer + 1) * n] for layer in range(layers)]
        self.input_views = [self.h_views[0]]
        self.input_views += [self.h[:, (layer - 1) * n : (layer + 1) * n] for layer in range(1, layers)]
        self.c_views = list(self.c.unbind(0))
        self.gate_views = tuple(self.gates[:, k * n : (k + 1) * n] for k in range(4))

    def load_state(self, state: State) -> None:
        """Start from the model's (h, c) [num_layers, batch, hidden], e.g. after feeding a primer."""
        h, c = state
        for layer in range(self.num_layers):
            self.h_views[layer].copy_(h[layer])
        self.c.copy_(c)

    def state(self) -> State:
        h = torch.stack([view.float() for view in self.h_views])
        return h, self.c.clone()

    def __call__(self, token_ids: torch.Tensor) -> torch.Tensor:
        torch.index_select(self.table, 0, token_ids, out=self.gates)
        for layer in range(self.num_layers):
            product = self.products[layer](self.input_views[layer])
            if self.biases[layer] is None:
                self.gates.add_(product)
            else:
                torch.add(self.biases[layer], product, out=self.gates)
            self._cell(layer)
        last = self.h_views[-1]
        if last.dtype != torch.float32:
            last = self.last_h.copy_(last)
        return torch.addmm(self.head_bias, last, self.head_weight, out=self.logits)

    def _cell(self, layer: int) -> None:
        """c = f c + i g; h = o tanh(c), with gates in PyTorch's order i, f, g, o and g = 2 sigmoid - 1."""
        i, f, g, o = self.gate_views
        c = self.c_views[layer]
        self.gates.sigmoid_()
        c.mul_(f).addcmul_(i, g, value=2.0).sub_(i)
        if self.tanh_by_sigmoid:
            torch.mul(c, 2.0, out=self.tanh_c).sigmoid_().mul_(2.0).sub_(1.0)
        else:
            torch.tanh(c, out=self.tanh_c)
        torch.mul(o, self.tanh_c, out=self.h_views[layer])


class TokenSelector:
    """Draws one token per row from logits with temperature (> 0: greedy decoding is `sampling.greedy`, for
    both paths), top-k and top-p, into reused buffers.

    The distribution is `sampling.next_token_probs`; the draw is inverse-CDF on one uniform per
    row from `generator`, exactly as `sampling.draw`, so both paths give the same tokens for the
    same seed whenever their logits agree.
    """

    def __init__(self, batch_size: int, vocab_size: int, temperature: float, top_k: int | None,
                 top_p: float | None, generator: torch.Generator):
        self.temperature, self.generator = temperature, generator
        self.top_k = top_k if top_k is not None and top_k < vocab_size else None
        self.top_p = top_p if top_p is not None and top_p < 1 else None
        self.scaled = torch.empty(batch_size, vocab_size)
        self.probs = torch.empty(batch_size, vocab_size)
        self.cdf = torch.empty(batch_size, vocab_size)
        self.uniform = torch.empty(batch_size, 1)
        self.token = torch.empty(batch_size, 1, dtype=torch.long)
        self.tokens, self.total_mass = self.token[:, 0], self.cdf[:, -1:]
        if self.top_k is not None:
            self.top_values = torch.empty(batch_size, self.top_k)
            self.top_indices = torch.empty(batch_size, self.top_k, dtype=torch.long)
            self.below = torch.empty(batch_size, vocab_size, dtype=torch.bool)
            self.kth_value = self.top_values[:, -1:]
        if self.top_p is not None:
            self.sorted = torch.empty(batch_size, vocab_size)
            self.order = torch.empty(batch_size, vocab_size, dtype=torch.long)
            self.mass = torch.empty(batch_size, vocab_size)
            self.outside = torch.empty(batch_size, vocab_size, dtype=torch.bool)
            self.total = torch.empty(batch_size, 1)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Token ids [batch] (a view of a reused buffer)."""
        self._fill_probs(logits)
        torch.cumsum(self.probs, -1, out=self.cdf)
        torch.rand(self.uniform.shape, generator=self.generator, out=self.uniform)
        self.uniform.mul_(self.total_mass)
        torch.searchsorted(self.cdf, self.uniform, right=True, out=self.token)
        self.token.clamp_(max=self.cdf.shape[-1] - 1)
        return self.tokens

    def _fill_probs(self, logits: torch.Tensor) -> None:
        torch.div(logits, self.temperature, out=self.scaled)
        if self.top_k is not None:
            torch.topk(self.scaled, self.top_k, dim=-1, out=(self.top_values, self.top_indices))
            torch.lt(self.scaled, self.kth_value, out=self.below)
            self.scaled.masked_fill_(self.below, float("-inf"))
        torch._softmax(self.scaled, -1, False, out=self.probs)
        if self.top_p is not None:
            torch.sort(self.probs, -1, descending=True, out=(self.sorted, self.order))
            torch.cumsum(self.sorted, -1, out=self.mass)
            self.mass.sub_(self.sorted)
            torch.ge(self.mass, self.top_p, out=self.outside)
            self.sorted.masked_fill_(self.outside, 0.0)
            self.probs.zero_().scatter_(-1, self.order, self.sorted)
            torch.sum(self.probs, -1, keepdim=True, out=self.total)
            self.probs.div_(self.total)
