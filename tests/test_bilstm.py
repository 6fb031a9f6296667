"""`students.bilstm`: the packed CPU BiLSTM against `nn.LSTM` on packed sequences, values and gradients."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from kdprobe.students.bilstm import Packing, bilstm


def reference(lstm, x, lengths, per_token):
    """`nn.LSTM` on packed sequences: the last layer's final states, or every layer's per-token states (a stack
    of the first l layers gives layer l's outputs)."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    if not per_token:
        _, (h_n, _) = lstm(packed)
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
    outputs = []
    for depth in range(1, lstm.num_layers + 1):
        lower = torch.nn.LSTM(lstm.input_size, lstm.hidden_size, num_layers=depth, bidirectional=True,
                              batch_first=True, dropout=lstm.dropout if depth > 1 else 0.0).to(x.dtype)
        for name in [n for n, _ in lower.named_parameters()]:
            delattr(lower, name)
            setattr(lower, name, getattr(lstm, name))  # the same tensors: gradients reach `lstm`
        lower.train(lstm.training)
        outputs.append(pad_packed_sequence(lower(packed)[0], batch_first=True, total_length=x.shape[1])[0])
    return outputs


def make(widths, frozen, lengths, width, seed=0, vocab=5, layers=1, dropout=0.0):
    """An LSTM, `vocab` words' vectors per channel, and a batch of word indices: with more tokens than words,
    words repeat within and across rows (and padding reads words too)."""
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(sum(widths), 5, num_layers=layers, bidirectional=True, batch_first=True,
                         dropout=dropout).double()
    vectors = [torch.randn(vocab, w, dtype=torch.float64, requires_grad=not f) for w, f in zip(widths, frozen)]
    words = torch.randint(0, vocab, (len(lengths), width))
    return lstm, vectors, words, torch.tensor(lengths)


def lookup(vectors, words):
    """The LSTM input the reference reads: each position's word vectors, channels concatenated."""
    return torch.cat(vectors, dim=1)[words]


def weighted_sum(outputs, weights):
    return sum((o * w).sum() for o, w in zip(outputs, weights))


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("widths,frozen", [([3, 4], [True, False]), ([6], [False]), ([2, 3, 2], [False, True, False])])
def test_equals_packed_lstm_values_and_gradients(per_token, widths, frozen, layers):
    lengths = [7, 3, 1, 5, 7, 2, 3]
    lstm, vectors, words, lens = make(widths, frozen, lengths, width=9, layers=layers)  # 2 columns of padding
    ours = bilstm(lstm, vectors, words, lens, per_token)
    ref = reference(lstm, lookup(vectors, words), lens, per_token)
    ours, ref = (ours, ref) if per_token else ([ours], [ref])
    assert len(ours) == len(ref) == (layers if per_token else 1)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    weights = [torch.randn_like(r) for r in ref]
    wanted = list(lstm.parameters()) + [v for v in vectors if v.requires_grad]
    ours_grad = torch.autograd.grad(weighted_sum(ours, weights), wanted)
    ref_grad = torch.autograd.grad(weighted_sum(ref, weights), wanted)
    for a, b in zip(ours_grad, ref_grad):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if per_token:
        pad = torch.arange(9)[None, :] >= lens[:, None]
        assert not any(o[pad].any() for o in ours)


def test_dropout_between_layers_as_nn_lstm():
    """Dropout 1 zeroes what layer 2 reads (deterministically, so comparable with `nn.LSTM`): layer 2 then sees
    only zeros, layer 1 still reads the words; in eval mode no dropout applies."""
    lstm, vectors, words, lens = make([4], [False], [5, 2, 4], width=5, layers=2, dropout=1.0)
    x = lookup(vectors, words)
    for training in (True, False):
        lstm.train(training)
        for per_token in (False, True):
            ours, ref = bilstm(lstm, vectors, words, lens, per_token), reference(lstm, x, lens, per_token)
            for a, b in zip(ours if per_token else [ours], ref if per_token else [ref]):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    lstm.train()
    words_changed = torch.randint(0, 5, words.shape)  # other words change layer 1 but not layer 2 (zero input)
    first, second = bilstm(lstm, vectors, words, lens, True), bilstm(lstm, vectors, words_changed, lens, True)
    assert not torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("layers", [1, 2])
def test_gradcheck(layers):
    lstm, vectors, words, lens = make([2, 3], [False, False], [4, 1, 3], width=4, seed=1, vocab=3, layers=layers)
    names = [n for n, _ in lstm.named_parameters()]
    params = [p for _, p in lstm.named_parameters()]

    def functional(*tensors):
        """The LSTM's weights as plain inputs, so that gradcheck perturbs them too."""
        proxy = torch.nn.LSTM(5, 5, num_layers=layers, bidirectional=True, batch_first=True).double()
        for name, tensor in zip(names, tensors):
            delattr(proxy, name)
            setattr(proxy, name, tensor)
        return tuple(bilstm(proxy, list(tensors[len(names):]), words, lens, True))

    inputs = [p.detach().clone().requires_grad_() for p in params] + vectors
    assert torch.autograd.gradcheck(functional, inputs, eps=1e-6, atol=1e-7)


def test_a_frozen_channel_gets_no_gradient():
    lstm, vectors, words, lens = make([3, 4], [True, False], [2, 4], width=4)
    bilstm(lstm, vectors, words, lens, False).sum().backward()
    assert vectors[0].grad is None and vectors[1].grad is not None


def test_packing_layout():
    p = Packing(torch.tensor([2, 4, 1]))
    assert p.order.tolist() == [1, 0, 2]
    assert p.counts == [3, 2, 1, 1] and p.offsets == [0, 3, 5, 6, 7]
    assert p.rows.tolist() == [1, 0, 2, 1, 0, 1, 1]
    assert p.positions[0].tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert p.positions[1].tolist() == [3, 1, 0, 2, 0, 1, 0]
    assert p.last.tolist() == [6, 4, 2]  # packed index of each sorted row's last step
    # the same (row, position) in the backward direction's packed order, e.g. token 0 (row 1, position 0) is
    # read by the backward direction at its last step (packed index 6)
    assert p.mirror.tolist() == [6, 4, 2, 5, 1, 3, 0]
    assert [(p.rows[i].item(), p.positions[1][i].item()) for i in p.mirror] == list(zip(
        p.rows.tolist(), p.positions[0].tolist()))
    assert p.previous[p.counts[0]:].tolist() == [0, 1, 3, 5]
    values = torch.arange(7.0)[None, :, None].repeat(2, 1, 1)
    assert p.before(values)[0, :, 0].tolist() == [0, 0, 0, 0, 1, 3, 5]
    words = torch.tensor([[10, 11, 99, 99], [20, 21, 22, 23], [30, 99, 99, 99]])
    assert p.tokens(words).tolist() == [[20, 10, 30, 21, 11, 22, 23], [23, 11, 30, 22, 10, 21, 20]]


def test_a_word_read_many_times_gets_the_sum_of_its_gradients():
    """One distinct word read at every position: its vector's gradient is that of all the positions together."""
    lstm, vectors, _, lens = make([3], [False], [4, 2], width=4, vocab=1)
    words = torch.zeros(2, 4, dtype=torch.int64)
    ours = torch.autograd.grad(bilstm(lstm, vectors, words, lens, False).sum(), vectors)[0]
    per_position = vectors[0].detach().expand(2, 4, 3).clone().requires_grad_()
    ref = torch.autograd.grad(reference(lstm, per_position, lens, False).sum(), per_position)[0]
    torch.testing.assert_close(ours, ref.sum((0, 1))[None], rtol=1e-10, atol=1e-12)


def test_float32_matches_the_packed_lstm():
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(40, 30, bidirectional=True, batch_first=True)
    lens = torch.randint(1, 25, (16,))
    vectors = [torch.randn(300, 20), torch.randn(300, 20, requires_grad=True)]
    words = torch.randint(0, 300, (16, int(lens.max())))
    torch.testing.assert_close(bilstm(lstm, vectors, words, lens, False),
                               reference(lstm, lookup(vectors, words), lens, False), rtol=1e-5, atol=1e-6)
