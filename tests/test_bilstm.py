"""`students.bilstm`: the packed CPU BiLSTM against `nn.LSTM` on packed sequences, values and gradients."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from kdprobe.students.bilstm import Packing, bilstm


def reference(lstm, x, lengths, per_token):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = lstm(packed)
    if per_token:
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
    return torch.cat([h_n[-2], h_n[-1]], dim=-1)


def make(widths, frozen, lengths, width, seed=0):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(sum(widths), 5, bidirectional=True, batch_first=True).double()
    channels = [torch.randn(len(lengths), width, w, dtype=torch.float64, requires_grad=not f)
                for w, f in zip(widths, frozen)]
    return lstm, channels, torch.tensor(lengths)


@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("widths,frozen", [([3, 4], [True, False]), ([6], [False]), ([2, 3, 2], [False, True, False])])
def test_equals_packed_lstm_values_and_gradients(per_token, widths, frozen):
    lengths = [7, 3, 1, 5, 7, 2, 3]
    lstm, channels, lens = make(widths, frozen, lengths, width=9)  # two padding columns beyond the longest row
    ours = bilstm(lstm, channels, lens, per_token)
    ref = reference(lstm, torch.cat(channels, dim=-1), lens, per_token)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    weight = torch.randn_like(ref)
    wanted = list(lstm.parameters()) + [c for c in channels if c.requires_grad]
    ours_grad = torch.autograd.grad((ours * weight).sum(), wanted)
    ref_grad = torch.autograd.grad((ref * weight).sum(), wanted)
    for a, b in zip(ours_grad, ref_grad):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if per_token:
        pad = torch.arange(9)[None, :] >= lens[:, None]
        assert not ours[pad].any()


def test_gradcheck():
    lstm, channels, lens = make([2, 3], [False, False], [4, 1, 3], width=4, seed=1)
    names = [n for n, _ in lstm.named_parameters()]
    params = [p for _, p in lstm.named_parameters()]

    def functional(*tensors):
        """The LSTM's weights as plain inputs, so that gradcheck perturbs them too."""
        proxy = torch.nn.LSTM(5, 5, bidirectional=True, batch_first=True).double()
        for name, tensor in zip(names, tensors):
            delattr(proxy, name)
            setattr(proxy, name, tensor)
        return bilstm(proxy, list(tensors[len(names):]), lens, True)

    inputs = [p.detach().clone().requires_grad_() for p in params] + channels
    assert torch.autograd.gradcheck(functional, inputs, eps=1e-6, atol=1e-7)


def test_a_frozen_channel_gets_no_gradient():
    lstm, channels, lens = make([3, 4], [True, False], [2, 4], width=4)
    bilstm(lstm, channels, lens, False).sum().backward()
    assert channels[0].grad is None and channels[1].grad is not None


def test_packing_layout():
    p = Packing(torch.tensor([2, 4, 1]))
    assert p.order.tolist() == [1, 0, 2]
    assert p.counts == [3, 2, 1, 1] and p.offsets == [0, 3, 5, 6, 7]
    assert p.rows.tolist() == [1, 0, 2, 1, 0, 1, 1]
    assert p.positions[0].tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert p.positions[1].tolist() == [3, 1, 0, 2, 0, 1, 0]
    assert p.last.tolist() == [6, 4, 2]  # packed index of each sorted row's last step
    assert p.previous[p.counts[0]:].tolist() == [0, 1, 3, 5]
    values = torch.arange(7.0)[None, :, None].repeat(2, 1, 1)
    assert p.before(values)[0, :, 0].tolist() == [0, 0, 0, 0, 1, 3, 5]


def test_float32_matches_the_packed_lstm():
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(40, 30, bidirectional=True, batch_first=True)
    lens = torch.randint(1, 25, (16,))
    x = [torch.randn(16, int(lens.max()), 20), torch.randn(16, int(lens.max()), 20, requires_grad=True)]
    torch.testing.assert_close(bilstm(lstm, x, lens, False), reference(lstm, torch.cat(x, -1), lens, False),
                               rtol=1e-5, atol=1e-6)
