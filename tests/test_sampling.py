"""GPT-2 sampling with the KV cache: stopping, reproducibility, chunk resume, equivalence with full re-runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from kdprobe.augment import sample as sampling
from kdprobe.augment.sample import chunk_generator, next_tokens, sample_batch, sample_shard

from test_lm import make_tiny_gpt2

SETTINGS = {"max_length": 10, "batch_size": 6, "temperature": 1.0, "top_k": 0, "chunk_size": 8}


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    return make_tiny_gpt2(tmp_path_factory.mktemp("sampling") / "gpt2")


@pytest.fixture(scope="module")
def lm(gpt2):
    return AutoModelForCausalLM.from_pretrained(gpt2).eval(), AutoTokenizer.from_pretrained(gpt2)


class EosBias(torch.nn.Module):
    """Wraps an LM: adds `bias(t)` to the end token's logit at generation step t (cached or full re-run)."""

    def __init__(self, inner, eos: int, bias):
        super().__init__()
        self.inner, self.eos, self.bias = inner, eos, bias

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        start = past_key_values.get_seq_length() if past_key_values is not None else 0
        out = self.inner(input_ids=input_ids, past_key_values=past_key_values, use_cache=use_cache)
        for i in range(input_ids.shape[1]):
            out.logits[:, i, self.eos] += self.bias(start + i)
        return out


def force_eos(model, eos: int, step: int | None) -> EosBias:
    """The end token is certain at generation step `step` and impossible at every other step."""
    return EosBias(model, eos, lambda t: 1e4 if t == step else float("-inf"))


def _sample(model, n, eos, generator_seed=0, **kw):
    kw = {"max_length": 10, "temperature": 1.0, "top_k": 0, **kw}
    return sample_batch(model, n, bos=eos, eos=eos, generator=torch.Generator().manual_seed(generator_seed),
                        device=torch.device("cpu"), **kw)


def test_stops_at_end_token_or_max_length(lm):
    model, tok = lm
    eos = tok.eos_token_id
    forced = _sample(force_eos(model, eos, step=4), 7, eos, max_length=10)
    assert [len(s) for s in forced] == [4] * 7  # end token sampled at step 4: four tokens, end token dropped
    assert all(eos not in s for s in forced)
    never = _sample(force_eos(model, eos, step=None), 5, eos, max_length=6)
    assert [len(s) for s in never] == [6] * 5
    done = []
    at_once = _sample(force_eos(model, eos, step=0), 3, eos, on_done=done.append)
    assert at_once == [[], [], []] and sum(done) == 3


def test_cache_path_equals_full_reruns(lm, monkeypatch):
    """Every step's logits of every live row (through compaction) equal a full forward pass of its prefix."""
    model, tok = lm
    compactions = []
    real = DynamicCache.batch_select_indices
    monkeypatch.setattr(DynamicCache, "batch_select_indices",
                        lambda self, idx: compactions.append(len(idx)) or real(self, idx))
    eos = tok.eos_token_id
    model = EosBias(model, eos, lambda t: 3.0)  # the end token likely enough that rows end at varied steps
    trace: list = []
    seqs = _sample(model, 20, eos, generator_seed=1, max_length=12, trace=trace)
    assert len({len(s) for s in seqs}) > 2  # rows finish at different steps: the batch was compacted
    assert len(trace[-1][0]) < 20 and len(compactions) >= 2
    with torch.inference_mode():
        for t, (rows, logits) in enumerate(trace):
            prefixes = torch.tensor([[eos] + seqs[r][:t] for r in rows.tolist()])
            full = model(input_ids=prefixes, use_cache=False).logits[:, -1, :]
            torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)
            assert all(len(seqs[r]) >= t for r in rows.tolist())
    # every row is traced at every step until it ends
    assert sum(len(rows) for rows, _ in trace) == sum(min(len(s) + 1, 12) for s in seqs)


def test_sampled_tokens_equal_a_naive_sampler(lm):
    """With one row and the same generator, the cached sampler draws what a re-run-everything sampler draws."""
    model, tok = lm
    eos = tok.eos_token_id
    for seed in range(4):
        ours = _sample(model, 1, eos, generator_seed=seed, max_length=12)[0]
        gen, ref = torch.Generator().manual_seed(seed), []
        with torch.inference_mode():
            while len(ref) < 12:
                logits = model(input_ids=torch.tensor([[eos] + ref]), use_cache=False).logits[:, -1, :]
                nxt = int(next_tokens(logits, 1.0, 0, gen))
                if nxt == eos:
                    break
                ref.append(nxt)
        assert ours == ref


def test_top_k_one_is_greedy(lm):
    model, tok = lm
    eos = tok.eos_token_id
    assert _sample(model, 3, eos, top_k=1) == _sample(model, 3, eos, temperature=0.0)


def test_shard_reproducible_and_seeded(gpt2, tmp_path):
    a = sample_shard(gpt2, 20, 5, SETTINGS, tmp_path / "a.parquet", tmp_path / "ca", "cpu")
    sample_shard(gpt2, 20, 5, SETTINGS, tmp_path / "b.parquet", tmp_path / "cb", "cpu")
    sample_shard(gpt2, 20, 6, SETTINGS, tmp_path / "c.parquet", tmp_path / "cc", "cpu")
    assert a == 20
    ta, tb, tc = (pq.read_table(tmp_path / f"{x}.parquet") for x in "abc")
    assert ta.schema.names == ["sentence"] and str(ta.schema.field("sentence").type) == "string"
    assert ta.column("sentence").to_pylist() == tb.column("sentence").to_pylist()
    assert ta.column("sentence").to_pylist() != tc.column("sentence").to_pylist()
    assert not (tmp_path / "ca").exists()  # chunks and manifest removed
    assert all(s == s.strip() for s in ta.column("sentence").to_pylist())


def test_chunk_resume_matches_uninterrupted_run(gpt2, tmp_path, monkeypatch):
    sample_shard(gpt2, 30, 9, SETTINGS, tmp_path / "full.parquet", tmp_path / "full", "cpu")
    calls = {"n": 0}
    real = sampling.sample_batch

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # chunks of 8 in batches of 6: calls 1-2 chunk 0, 3-4 chunk 1, 5 dies in chunk 2
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(sampling, "sample_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        sample_shard(gpt2, 30, 9, SETTINGS, tmp_path / "cut.parquet", tmp_path / "cut", "cpu")
    assert sorted(p.name for p in (tmp_path / "cut").glob("chunk*")) == ["chunk00000.parquet", "chunk00001.parquet"]
    assert not (tmp_path / "cut.parquet").exists()
    calls["n"] = -100  # no more dying; count the calls of the restart
    sample_shard(gpt2, 30, 9, SETTINGS, tmp_path / "cut.parquet", tmp_path / "cut", "cpu")
    assert calls["n"] == -100 + 3  # only chunk 2 (8 rows: 2 batches) and chunk 3 (6 rows: 1 batch)
    full = pd.read_parquet(tmp_path / "full.parquet")["sentence"].tolist()
    assert pd.read_parquet(tmp_path / "cut.parquet")["sentence"].tolist() == full


def test_stale_chunks_are_discarded(gpt2, tmp_path):
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    pd.DataFrame({"sentence": ["stale"] * 8}).to_parquet(chunks / "chunk00000.parquet")
    sample_shard(gpt2, 8, 1, SETTINGS, tmp_path / "out.parquet", chunks, "cpu")
    assert "stale" not in pd.read_parquet(tmp_path / "out.parquet")["sentence"].tolist()


def test_chunk_generators_differ_and_repeat():
    draws = [torch.rand(3, generator=chunk_generator(s, j, torch.device("cpu"))) for s, j in [(1, 0), (1, 1), (2, 0)]]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    assert torch.equal(draws[0], torch.rand(3, generator=chunk_generator(1, 0, torch.device("cpu"))))


class Plain(torch.nn.Module):
    """Hides a GPT-2 behind a wrapper, so `sample_batch` takes the generic `past_key_values` path."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        return self.inner(input_ids=input_ids, past_key_values=past_key_values, use_cache=use_cache)


def test_gpt2_decoder_matches_full_reruns_through_compaction(lm):
    model, tok = lm
    assert sampling.Gpt2Decoder.supports(model) and not sampling.Gpt2Decoder.supports(Plain(model))
    seqs = torch.randint(len(tok), (5, 9), generator=torch.Generator().manual_seed(0))
    seqs[:, 0] = tok.eos_token_id
    decoder = sampling.Gpt2Decoder(model, 5, 10, torch.device("cpu"))
    rows = torch.arange(5)
    with torch.inference_mode():
        for t in range(9):
            got = decoder.step(seqs[rows, t])
            full = model(input_ids=seqs[rows, : t + 1], use_cache=False).logits[:, -1, :]
            torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
            if t in (3, 6):
                keep = torch.tensor([0, 2, 3]) if t == 3 else torch.tensor([2])
                decoder.select(keep)
                rows = rows[keep]
                assert decoder.slots == (5 if t == 3 else 1)  # packed once at most half the slots are live
    decoder.reset(4)  # the cache serves the next batch
    assert (decoder.filled, decoder.slots, decoder.slot) == (0, 4, None)


def eos_boosted(model, eos: int, boost: float):
    """A copy of a GPT-2 LM whose end-token logit is raised by about `boost` at every step (an untied LM head
    reads a constant unit that the final LayerNorm's bias provides), so rows end at varied steps."""
    config = copy.deepcopy(model.config)
    config.tie_word_embeddings = False
    out = type(model)(config).eval()
    out.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        out.lm_head.weight.copy_(model.transformer.wte.weight)
        out.transformer.ln_f.weight[0] = 0.0
        out.transformer.ln_f.bias[0] = 1.0
        out.lm_head.weight[:, 0] = 0.0
        out.lm_head.weight[eos, 0] = boost
    return out


def test_gpt2_decoder_samples_what_the_generic_path_samples(lm, monkeypatch):
    model, tok = lm
    eos = tok.eos_token_id
    model = eos_boosted(model, eos, 5.0)
    compactions = []
    real = sampling.Gpt2Decoder.select
    monkeypatch.setattr(sampling.Gpt2Decoder, "select", lambda self, keep: compactions.append(len(keep)) or
                        real(self, keep))
    for seed in range(3):
        fast = _sample(model, 16, eos, generator_seed=seed, max_length=15)
        assert fast == _sample(Plain(model), 16, eos, generator_seed=seed, max_length=15)
        assert len({len(s) for s in fast}) > 2
    assert len(compactions) >= 3


def test_next_tokens_follow_the_distribution():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7, 0.0]])).expand(20000, 4)
    draws = next_tokens(logits, 1.0, 0, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.7, 0.0]), atol=0.015, rtol=0)
    top2 = next_tokens(logits, 1.0, 2, torch.Generator().manual_seed(0))
    assert set(top2.tolist()) == {1, 2}
    assert next_tokens(logits[:3], 0.0, 0, torch.Generator()).tolist() == [2, 2, 2]


def test_shard_with_automatic_batch_size(gpt2, tmp_path):
    settings = {**SETTINGS, "batch_size": "auto"}
    assert sample_shard(gpt2, 9, 5, settings, tmp_path / "a.parquet", tmp_path / "ca", "cpu") == 9
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 9
    assert pq.ParquetFile(tmp_path / "a.parquet").num_row_groups == 2  # copied chunk by chunk (8 + 1)


def test_lanes_do_not_change_the_samples(lm):
    model, tok = lm
    eos = tok.eos_token_id
    kw = {"seed": 3, "chunk": 1, "bos": eos, "eos": eos, "max_length": 10, "batch_size": 4,
          "device": torch.device("cpu")}
    one = sampling.sample_rows(model, 11, lanes=sampling.Lanes(1), **kw)
    threads = torch.get_num_threads()
    lanes = sampling.Lanes(3)
    try:
        three = sampling.sample_rows(model, 11, lanes=lanes, **kw)
    finally:
        lanes.close()
    assert one == three and len(one) == 11
    assert torch.get_num_threads() == threads
    assert sampling.sample_rows(model, 11, **{**kw, "chunk": 2}) != one  # another chunk, other draws


def test_gpu_building_blocks_on_cpu(lm):
    """What the decoder does differently on a GPU, checked where it can run: weights and cache in another dtype
    (bf16 there; float64 here, as bf16 matmuls are not safe on every CPU) with logits returned as fp32, and fused
    attention (equal to the CPU's two matmuls)."""
    model, tok = lm
    seqs = torch.randint(len(tok), (4, 6), generator=torch.Generator().manual_seed(1))
    fp32 = sampling.Gpt2Decoder(model, 4, 8, torch.device("cpu"))
    other = sampling.Gpt2Decoder(model, 4, 8, torch.device("cpu"), dtype=torch.float64)
    assert other.cache.dtype == torch.float64 and other.head_w.dtype == torch.float64
    with torch.inference_mode():
        for t in range(6):
            a, b = fp32.step(seqs[:, t]), other.step(seqs[:, t])
            assert b.dtype == torch.float32
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    q, k, v = torch.randn(3, 2, 1, 8), torch.randn(3, 2, 5, 8), torch.randn(3, 2, 5, 8)
    torch.testing.assert_close(sampling._attend_sdpa(q, k, v, 0.3), sampling._attend_matmul(q, k, v, 0.3))
    x = torch.randn(50)
    torch.testing.assert_close(sampling._gelu_tanh(x.clone()), torch.nn.functional.gelu(x, approximate="tanh"))


#: What a fake sampler "generates" in a shard of 20 (chunks of 8, 8, 4): whitespace-only and empty text, text that
#: normalises to a sentence sampled before, and repeats across chunks.
GENERATED = [
    "a good film", "", " ", "\n\t", "  a   good\tfilm ", "it was fine", "the end", "\n",      # chunk 0
    "it was fine", "new words", " \r\n ", "the end", "x", "y", "z", "a good film",             # chunk 1
    "", "last one", "last  one", "\t",                                                          # chunk 2
]


def test_empty_sentences_are_dropped_and_duplicates_counted(gpt2, tmp_path, monkeypatch, caplog):
    tok = AutoTokenizer.from_pretrained(gpt2)
    ids = [tok.encode(text) for text in GENERATED]
    assert tok.batch_decode(ids) == GENERATED  # the fake sampler's ids decode to exactly this text

    def fake_rows(model, n, *, chunk, **kw):
        start = chunk * SETTINGS["chunk_size"]
        return ids[start : start + n]

    monkeypatch.setattr(sampling, "sample_rows", fake_rows)
    with caplog.at_level("INFO", logger="kdprobe"):
        n = sample_shard(gpt2, 20, 1, SETTINGS, tmp_path / "out.parquet", tmp_path / "chunks", "cpu")
    written = pd.read_parquet(tmp_path / "out.parquet")["sentence"].tolist()
    expected = [" ".join(text.split()) for text in GENERATED if text.split()]
    assert written == expected and n == len(expected) == 13  # normalised, in order, the 7 empty ones dropped
    assert "" not in written
    assert "chunk 0: 8 sentences sampled" in caplog.text and "4 empty after normalisation (dropped)" in caplog.text
    # duplicates within the shard, across its chunks too: a good film x3, it was fine x2, the end x2, last one x2
    assert "of the 20 sampled, 7 were empty after normalisation (dropped); 5 repeat an earlier sentence" \
        in caplog.text


def test_compile_setting_reaches_the_decode_step(gpt2, tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn.__name__) or fn)
    sample_shard(gpt2, 4, 1, SETTINGS, tmp_path / "a.parquet", tmp_path / "ca", "cpu")
    assert compiled == []  # off unless asked
    sample_shard(gpt2, 4, 1, {**SETTINGS, "compile": True}, tmp_path / "b.parquet", tmp_path / "cb", "cpu")
    assert compiled and set(compiled) == {"step"}


def test_auto_batch_falls_back_after_running_out_of_gpu_memory(gpt2, tmp_path, monkeypatch):
    """`augment.batch_size: auto` sized a batch the GPU could not hold: the retry samples in half of it."""
    from kdprobe.runtime import OOM_MARKER, GpuOutOfMemory

    real, batches = sampling.sample_rows, []

    def too_big(*args, batch_size, **kwargs):  # a GPU that fits 512 rows
        batches.append(batch_size)
        if batch_size > 512:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(sampling, "sample_rows", too_big)
    settings, state = {**SETTINGS, "batch_size": "auto"}, tmp_path / "state"
    with pytest.raises(GpuOutOfMemory, match=r"batches of 1024 \(augment.batch_size\).*runs batches of 512"):
        sample_shard(gpt2, 20, 5, settings, tmp_path / "a.parquet", state, "cpu")  # auto: 1024 on a CPU
    assert (state / OOM_MARKER).exists() and not (tmp_path / "a.parquet").exists()
    assert sample_shard(gpt2, 20, 5, settings, tmp_path / "a.parquet", state, "cpu") == 20
    assert batches == [1024, 512, 512, 512] and not state.exists()  # 3 chunks of 8, 8 and 4 sentences
