"""A stacked bidirectional LSTM over right-padded batches on the CPU: packed, with a hand-written backward pass.

It computes what `nn.LSTM` (any `num_layers`, bidirectional, batch_first) computes on packed sequences (each row's
forward direction reads its tokens in order, its backward direction reads them in reverse from the row's last real
token; layer l+1 reads layer l's outputs of both directions concatenated, through `nn.LSTM`'s inter-layer dropout
in training mode) and, like packing, does no work on padding: rows are sorted by length, and step s runs only the
rows longer than s, both directions in one batched product (the forward direction at position s, the backward
direction at position length-1-s of each row).
The first layer's input is a vocabulary, not a sequence of vectors: the vectors of the batch's distinct words and,
per position, the index of its word. The input-side products therefore run once per distinct word, not once per
token: the input projections (forward), the input-weight gradient and the input gradients, the last formed only
for channels that need one (not for a frozen embedding table). A deeper layer's "vocabulary" is the batch's real
tokens (the layer below's outputs in packed order), each read once per direction. Of the rest:
- the recurrent products run step by step on the rows still running; the recurrent-weight gradient is one large
  product per direction after the backward loop;
- the backward pass reuses the saved gate activations (no autograd graph over the time steps).
`tests/test_bilstm.py` compares it with `nn.LSTM` on packed sequences; `benchmarks/run.py` times it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class Packing:
    """Where the tokens of a right-padded batch with `lengths` go in step-major packed order: step s holds the
    rows longer than s (longest first), `offsets[s]` is its first packed index and `counts[s]` its size."""

    def __init__(self, lengths: torch.Tensor):
        lengths = lengths.to(torch.int64)
        self.sorted_lengths, self.order = torch.sort(lengths, descending=True, stable=True)
        width = int(self.sorted_lengths[0])
        steps = torch.arange(width, device=lengths.device)
        counts = (self.sorted_lengths[None, :] > steps[:, None]).sum(1)
        self.counts = counts.tolist()
        self.offsets = [0, *torch.cumsum(counts, 0).tolist()]
        offsets = torch.tensor(self.offsets, device=lengths.device)
        step = torch.repeat_interleave(steps, counts)  # step of each packed token
        rank = torch.arange(self.offsets[-1], device=lengths.device) - offsets[step]  # its sorted row
        self.rows = self.order[rank]  # its batch row
        self.positions = (step, self.sorted_lengths[rank] - 1 - step)  # the position each direction reads
        # packed index of each token's previous step (the same row one step earlier; meaningless at step 0)
        self.previous = offsets[(step - 1).clamp_min(0)] + rank
        # packed index of each sorted row's last step
        self.last = offsets[self.sorted_lengths - 1] + torch.arange(len(lengths), device=lengths.device)
        # packed index of the token that the backward direction reads where the forward direction reads token i
        # (the same row and position): step length-1-s instead of s
        self.mirror = offsets[self.positions[1]] + rank

    def steps(self):
        """(first packed index, rows) of each step, and the first packed index of the step before (None at 0)."""
        before = None
        for a, m in zip(self.offsets, self.counts):
            yield a, m, before
            before = a

    def tokens(self, words: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (2, N): what each direction reads at each packed token."""
        return torch.stack([words[self.rows, pos] for pos in self.positions])

    def next_layer_input(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(2, N, H) states -> what the layer above reads: each token's outputs of both directions side by side
        (N, 2H), in the forward direction's packed order, and the (2, N) rows of it that each direction reads."""
        tokens = torch.cat([states[0], states[1, self.mirror]], dim=-1)
        return tokens, torch.stack([torch.arange(len(self.mirror), device=self.mirror.device), self.mirror])

    def unpack(self, states: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """(2, N, H) states -> (B, T, 2H): both directions' states at every position of a (B, T) batch, zeros at
        padding."""
        zeros = states.new_zeros(*shape, states.shape[-1])
        return torch.cat([zeros.index_put((self.rows, pos), values)
                          for values, pos in zip(states, self.positions)], dim=-1)

    def before(self, packed: torch.Tensor) -> torch.Tensor:
        """(2, N, d) -> (2, N, d): each token's value at the step before (zeros at a row's first step)."""
        out = packed[:, self.previous]
        out[:, : self.counts[0]] = 0
        return out


class _BiLstm(torch.autograd.Function):
    """(packing, words (2, N), w_ih (2, 4H, D), w_hh (2, 4H, H), bias (2, 4H), *vectors (V, d_c)) -> states (2, N, H)
    of the packed tokens, where `words` indexes the V rows of the concatenated `vectors` (D = sum d_c)."""

    @staticmethod
    def forward(ctx, packing: Packing, words, w_ih, w_hh, bias, *vectors):
        hidden = w_hh.shape[2]
        table = torch.cat(vectors, dim=1)
        # input projections of each distinct word (2, V, 4H), then of each token (2, N, 4H); step by step,
        # h @ w_hh^T is added to a step's rows in new contiguous blocks (2, rows, .) of gates, cells and states
        # (batched products on strided views are slow), concatenated in packed order at the end
        vocab = table.shape[0]
        per_word = torch.baddbmm(bias[:, None, :], table.expand(2, *table.shape), w_ih.transpose(1, 2))
        # each token's row in the (2 * vocab, 4H) view of per-direction, per-word rows
        rows = (words + torch.tensor([[0], [vocab]], device=words.device)).view(-1)
        projected = per_word.view(-1, 4 * hidden)[rows].view(2, -1, 4 * hidden)
        gates, cells, states = [], [], []
        w_hh_t = w_hh.transpose(1, 2).contiguous()
        for a, m, p in packing.steps():
            if p is None:
                g = projected[:, :m]
            else:
                g = torch.baddbmm(projected[:, a : a + m], states[-1][:, :m], w_hh_t)
            g[..., : 2 * hidden].sigmoid_()
            g[..., 2 * hidden : 3 * hidden].tanh_()
            g[..., 3 * hidden :].sigmoid_()
            i, f, c_in, o = g.split(hidden, dim=-1)
            c = i * c_in
            if p is not None:
                c.addcmul_(f, cells[-1][:, :m])
            gates.append(g)
            cells.append(c)
            states.append(torch.tanh(c).mul_(o))
        gates, cells, states = (torch.cat(t, dim=1) for t in (gates, cells, states))
        ctx.packing = packing
        ctx.widths = [v.shape[1] for v in vectors]
        ctx.save_for_backward(rows, w_ih, w_hh, gates, cells, states, table)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        rows, w_ih, w_hh, gates, cells, states, table = ctx.saved_tensors
        packing = ctx.packing
        n, hidden = states.shape[1:]
        i, f, c_in, o = gates.split(hidden, dim=-1)
        prev_cells, prev_states = packing.before(cells), packing.before(states)
        # d(gate pre-activations) = dc * [K_i, K_f, K_g] and dh * K_o, where dc += dh * o * (1 - tanh(c)^2)
        tanh_cells = torch.tanh(cells)
        factors = torch.rsub(gates, 1).mul_(gates)  # a * (1 - a): the sigmoid gates' derivatives
        k_i, k_f, k_g, k_o = factors.split(hidden, dim=-1)
        k_i.mul_(c_in)
        k_f.mul_(prev_cells)
        k_o.mul_(tanh_cells)
        torch.mul(c_in, c_in, out=k_g).neg_().add_(1).mul_(i)
        through_tanh = tanh_cells.mul_(tanh_cells).neg_().add_(1).mul_(o)
        factors = factors.view(2, n, 4, hidden)
        blocks = []  # per step, contiguous (2, rows, 4H), for the product below
        dh = grad_states.new_zeros(2, packing.counts[0], hidden)
        dc = torch.zeros_like(dh)
        for a, m, p in reversed(list(packing.steps())):
            dh_s, dc_s = dh[:, :m], dc[:, :m]
            dh_s += grad_states[:, a : a + m]
            dc_s.addcmul_(dh_s, through_tanh[:, a : a + m])
            dg = grad_states.new_empty(2, m, 4, hidden)
            torch.mul(factors[:, a : a + m, :3], dc_s[:, :, None, :], out=dg[:, :, :3])
            torch.mul(factors[:, a : a + m, 3], dh_s, out=dg[:, :, 3])
            blocks.append(dg.view(2, m, 4 * hidden))
            if p is not None:
                dc_s.mul_(f[:, a : a + m])
                torch.bmm(blocks[-1], w_hh, out=dh_s)
        grad_gates = torch.cat(blocks[::-1], dim=1)
        grad_w_hh = torch.bmm(grad_gates.transpose(1, 2), prev_states)
        # the gate gradients summed per distinct word (2, V, 4H): the input side needs nothing finer
        vocab = table.shape[0]
        per_word = grad_gates.new_zeros(2 * vocab, 4 * hidden).index_add_(0, rows, grad_gates.view(-1, 4 * hidden))
        per_word = per_word.view(2, vocab, 4 * hidden)
        grad_w_ih = torch.bmm(per_word.transpose(1, 2), table.expand(2, *table.shape))
        both = per_word.transpose(0, 1).reshape(vocab, 8 * hidden)  # both directions side by side
        grad_vectors, start = [], 0
        for width, need in zip(ctx.widths, ctx.needs_input_grad[5:]):
            cols = w_ih[:, :, start : start + width].reshape(8 * hidden, width)
            grad_vectors.append(both @ cols if need else None)
            start += width
        return None, None, grad_w_ih, grad_w_hh, per_word.sum(1), *grad_vectors


def _layer_weights(lstm: nn.LSTM, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer `layer`'s weights, both directions stacked: w_ih (2, 4H, D), w_hh (2, 4H, H), summed biases (2, 4H)."""
    def weight(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(lstm, f"{name}_l{layer}"), getattr(lstm, f"{name}_l{layer}_reverse")

    bias = [b_ih + b_hh for b_ih, b_hh in zip(weight("bias_ih"), weight("bias_hh"))]
    return torch.stack(weight("weight_ih")), torch.stack(weight("weight_hh")), torch.stack(bias)


def bilstm(lstm: nn.LSTM, vectors: list[torch.Tensor], words: torch.Tensor, lengths: torch.Tensor,
           per_token: bool) -> torch.Tensor | list[torch.Tensor]:
    """Run `lstm` (bidirectional, batch_first, with biases, any number of layers) over a right-padded batch whose
    position (b, t) reads word `words[b, t]`, rows having `lengths` (1 <= length <= T). `vectors` are the channels
    of the words' vectors (V, d_c each, their concatenation being the LSTM input). Returns the last layer's final
    states (B, 2H: forward state at each row's last token, backward state at its first), or with `per_token` the
    states of every position of every layer, lowest first ([(B, T, 2H)] * num_layers, zeros at padding).
    Between layers, `lstm.dropout` applies to the lower layer's outputs in training mode, as in `nn.LSTM`."""
    packing = Packing(lengths)
    tokens = packing.tokens(words)
    layers = []
    for layer in range(lstm.num_layers):
        if layer:
            table, tokens = packing.next_layer_input(layers[-1])
            vectors = [F.dropout(table, lstm.dropout, lstm.training)]
        layers.append(_BiLstm.apply(packing, tokens, *_layer_weights(lstm, layer), *vectors))  # (2, N, H)
    if per_token:
        return [packing.unpack(states, words.shape) for states in layers]
    final = torch.cat([layers[-1][0, packing.last], layers[-1][1, packing.last]], dim=-1)  # sorted rows
    return final[torch.argsort(packing.order)]
