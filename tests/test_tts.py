"""TTS space, speech data, supernet, export and a short Tune run on a real espeak-ng corpus."""

import shutil
import wave
from dataclasses import replace

import numpy as np
import pytest
import torch

from seminas_tune.data.make_espeak_corpus import CorpusConfig, make_corpus
from seminas_tune.data.speech import (
    CharVocab,
    MelConfig,
    MelExtractor,
    collate,
    length_batches,
    load_corpus,
    load_wav,
    normalize_text,
    read_metadata,
    save_wav,
)
from seminas_tune.spaces.base import InvalidConfigError
from seminas_tune.spaces.tts import TTS_OPS, TTSSpace
from seminas_tune.supernet.tts import (
    TTSModelConfig,
    TTSNet,
    TTSSupernetTask,
    TTSTaskConfig,
    evaluate_arch,
    export_architecture,
    load_split,
    load_tts_model,
    save_tts_model,
    supernet_from_store,
    synthesize_to_wav,
    train_steps,
)

MEL = TTSTaskConfig.tiny(".").mel
SENTENCES = [
    "The cat sat on the mat.",
    "Dr. Brown has 3 red boxes.",
    "A dog ran home.",
    "We sing loudly.",
    "Open the door, please.",
    "It rained for 2 days.",
    "My old car is blue.",
    "Birds fly south.",
    "She read a long book.",
    "Is the tea hot?",
    "The sun came up early.",
    "Ten men walked in.",
    "He fixed the clock.",
    "Look at the kite!",
    "Bread is on the table.",
    "Cold wind blew hard.",
    "Send me a letter.",
    "The boat left at noon.",
    "Fish swim in lakes.",
    "Our team won again.",
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed; the TTS tests need it: apt-get install -y espeak-ng")
    return make_corpus(CorpusConfig(out=str(tmp_path_factory.mktemp("espeak") / "corpus"), n=20, val=4), SENTENCES)


def tiny_model(n_enc=2, n_dec=2) -> TTSModelConfig:
    return replace(TTSTaskConfig.tiny(".").model, n_encoder=n_enc, n_decoder=n_dec)


def tiny_task(corpus) -> TTSTaskConfig:
    return TTSTaskConfig.tiny(corpus)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# -- space -----------------------------------------------------------------------------------
def test_tts_space_protocol():
    space = TTSSpace(6, 6)
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert len(arch) == 12 and space.is_valid(arch) and space.vocab_size == 12 and space.seq_len == 12
    tokens = space.encode(arch)
    assert space.decode(tokens) == arch and all(t in space.allowed_tokens(i) for i, t in enumerate(tokens))
    assert space.decode(tokens[:-1]) is None and space.decode([0] + tokens[1:]) is None
    assert space.token_mask()[:, 0].sum() == 0
    assert space.from_config(space.to_config(arch)) == arch
    with pytest.raises(InvalidConfigError):
        space.from_config({**space.to_config(arch), "enc_0": "conv3"})
    nbrs = space.neighbours(arch)
    assert len(nbrs) == 12 * (len(TTS_OPS) - 1) == len({space.key(a) for a in nbrs})
    assert all(sum(x != y for x, y in zip(a, arch)) == 1 for a in nbrs)
    assert space.key(space.mutate(arch, rng)) != space.key(arch)
    assert "12 values" in space.invalid_reason(arch[:-1]) and "conv3" in space.invalid_reason(("conv3",) + arch[1:])
    assert space.describe(arch).startswith("enc[")


# -- data ------------------------------------------------------------------------------------
def test_normalize_text_and_vocab():
    assert (
        normalize_text("Dr. Smith paid 1,250 dollars!") == "doctor smith paid one thousand two hundred fifty dollars!"
    )
    assert normalize_text("  Hello   (World) ") == "hello world"
    ids = CharVocab().encode("ab")
    assert ids[-1] == CharVocab.EOS and CharVocab.PAD not in ids


def test_corpus_layout_and_loader(corpus, tmp_path):
    rows = read_metadata(corpus)
    assert len(rows) == 20 and rows[1].normalized == "doctor brown has three red boxes."
    audio, sr = load_wav(rows[0].wav)
    assert sr == 22050 and 0.5 < len(audio) / sr < 5 and audio.abs().max() > 0.05
    items = load_corpus(corpus, MEL)
    assert all(it.mel.shape[1] == MEL.n_mels and it.tokens[-1] == CharVocab.EOS for it in items)
    assert (corpus / "train_ids.txt").read_text().count("\n") == 16
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("only-one-field\n")
    with pytest.raises(ValueError, match=r"metadata.csv:1: expected 'id\|text\|normalized_text'"):
        read_metadata(tmp_path)


def test_low_resource_split(corpus, tmp_path):
    out = make_corpus(CorpusConfig(out=str(tmp_path / "low"), n=8, val=2, low_resource=3), SENTENCES[:8])
    train = (out / "train_ids.txt").read_text().split()
    val = (out / "val_ids.txt").read_text().split()
    assert len(train) == 3 and len(val) == 2 and not set(train) & set(val)


def test_batching_by_length(corpus):
    items = load_corpus(corpus, MEL)
    lengths = [len(it.mel) for it in items]
    batches = length_batches(lengths, max_frames=150, rng=np.random.default_rng(0))
    assert sorted(i for b in batches for i in b) == list(range(len(items)))
    assert all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 150 for b in batches)
    batch = collate([items[i] for i in batches[0]], reduction=3)
    assert batch.mel.shape[1] % 3 == 0 and batch.tokens.shape == (len(batches[0]), int(batch.token_lens.max()))


def test_griffin_lim_round_trip(corpus, tmp_path):
    audio, sr = load_wav(read_metadata(corpus)[0].wav)
    ext = MelExtractor(MelConfig())
    mel = ext(audio, sr)
    wav = ext.to_audio(mel, n_iter=4)
    assert abs(len(wav) - len(audio)) <= MelConfig().hop_length
    save_wav(tmp_path / "x.wav", wav, sr)
    with wave.open(str(tmp_path / "x.wav")) as w:
        assert w.getnframes() == len(wav) and w.getframerate() == sr


# -- model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["conv5", "trans2", "lstm"])
def test_decoder_is_causal(op):
    torch.manual_seed(0)
    cfg = tiny_model(1, 1)
    net = TTSNet(cfg).eval()
    arch = ("conv1", op)
    tokens, lens = torch.randint(2, 20, (1, 7)), torch.tensor([7])
    mel = torch.randn(1, 12, cfg.n_mels)
    changed = mel.clone()
    changed[:, 8:] += 1.0  # frames of decoder steps 4 and 5 feed steps 5 and 6 only
    a, b = net(tokens, lens, mel, arch), net(tokens, lens, changed, arch)
    assert torch.allclose(a.mel[:, :10], b.mel[:, :10]) and not torch.allclose(a.mel[:, 10:], b.mel[:, 10:])


def test_training_moves_only_the_path(corpus):
    cfg = tiny_task(corpus)
    torch.manual_seed(0)
    net = TTSNet(cfg.model)
    arch = ("conv9", "lstm", "trans4", "conv5")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    metrics = train_steps(net, cfg, arch, 2, torch.device("cpu"))
    assert np.isfinite(metrics["train_loss"]) and metrics["train_frames"] > 0
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert any(".conv9." in k for k in changed) and any(k.startswith("embed") for k in changed)
    assert not any(".conv5." in k for k in changed if k.startswith("encoder"))
    assert not any(".trans2." in k or ".conv25." in k for k in changed)
    assert net.count_parameters(arch) < sum(p.numel() for p in net.parameters())


def test_exported_model_matches_its_supernet_path(corpus, tmp_path):
    cfg = tiny_task(corpus)
    torch.manual_seed(0)
    supernet = TTSNet(cfg.model)
    arch = ("trans8", "conv13", "lstm", "trans2")
    train_steps(supernet, cfg, arch, 2, torch.device("cpu"))
    static = export_architecture(supernet, arch)
    assert static.count_parameters() == supernet.count_parameters(arch)
    assert sum(p.numel() for p in static.parameters()) == static.count_parameters()
    path = save_tts_model(static, tmp_path / "model.pt", MEL)
    loaded, mel_cfg = load_tts_model(path)
    assert mel_cfg == MEL and loaded.arch == arch
    _, val = load_split(cfg)
    batch = collate(val[:3], cfg.model.reduction)
    a = supernet.eval().infer(batch.tokens, batch.token_lens, arch, max_frames_per_token=3.0)
    b = loaded.infer(batch.tokens, batch.token_lens, max_frames_per_token=3.0)
    assert torch.equal(a.steps, b.steps) and a.steps.min() >= 1
    assert torch.allclose(a.mel_post, b.mel_post, atol=1e-6)
    assert torch.allclose(a.attentions[-1], b.attentions[-1], atol=1e-6)
    with pytest.raises(ValueError, match="static model"):
        loaded.infer(batch.tokens, batch.token_lens, ("lstm",) * 4)
    wav = synthesize_to_wav(path, "Hello there.", tmp_path / "hello.wav", griffin_lim_iters=2)
    _, sr = load_wav(wav)
    assert sr == MEL.sample_rate and wav.stat().st_size > 1000
    # the saved length cap bounds synthesis (stop threshold 1.0: the stop token never fires)
    r = cfg.model.reduction
    for cap, steps in ((0.5, 1000), (10.0, 3)):
        capped = save_tts_model(static, tmp_path / "capped.pt", MEL, max_frames_per_token=cap, max_decoder_steps=steps)
        audio, _ = load_wav(synthesize_to_wav(capped, "Hello there.", tmp_path / "c.wav", 2, stop_threshold=1.0))
        n_tokens = len(CharVocab().encode("Hello there."))
        frames = min(steps, int(np.ceil(n_tokens * cap / r))) * r
        assert abs(len(audio) - frames * MEL.hop_length) <= MEL.hop_length, (cap, steps, len(audio))


# -- Tune --------------------------------------------------------------------------------------
def test_seminas_tune_run_on_the_tts_supernet_rescores_and_exports(corpus, ray_session, tmp_path):
    from seminas_tune.controller import ControllerConfig, EPDConfig
    from seminas_tune.search import SemiNASSearcher
    from seminas_tune.supernet.sharing import SharingConfig, SupernetScorer
    from trainables.tts_supernet import run_tts_search, tts_supernet_trainable

    cfg = tiny_task(corpus)
    task = TTSSupernetTask(cfg)
    sharing = SharingConfig(steps_per_trial=2, store_name="tts_test_store")
    tiny = ControllerConfig(
        epd=EPDConfig(hidden=16, mlp_hidden=16), labeled_steps=5, joint_steps=5, batch_size=16, num_threads=1
    )
    searcher = SemiNASSearcher(
        space=task.space,
        metric="dfr",
        mode="max",
        max_queries=5,
        num_initial=3,
        num_new=1,
        top_k=3,
        num_unlabeled=20,
        controller=tiny,
        rescore=SupernetScorer(task, sharing, "dfr"),
    )
    out = run_tts_search(cfg, sharing, 5, str(tmp_path), gpus_per_trial=0, search_alg=searcher, max_concurrent_trials=2)
    assert not out.results.errors
    df = out.results.get_dataframe()
    assert len(df) == 5
    assert ((df.dfr >= 0) & (df.dfr <= 1)).all() and np.isfinite(df.val_loss).all() and (df.params > 0).all()
    assert {"skipped_words", "repeated_words", "sentence_error_rate", "early_stops"} <= set(df.columns)
    assert (df.dfr <= df.dfr_unpenalised + 1e-12).all()
    assert sorted(df.store_version) == list(range(1, 6))
    assert searcher.iteration >= 2 and [h["archs"] for h in searcher.rescore_history[:2]] == [3, 4]
    assert len(out.ranking) == 5 and out.snapshot == 5
    torch.manual_seed(0)
    fresh = task.build().state_dict()
    supernet = supernet_from_store(task, sharing)
    assert not torch.equal(fresh["embed.weight"], supernet.state_dict()["embed.weight"])  # deltas landed
    arch, dfr = out.best
    model = task.export(supernet, arch, torch.device("cpu"))
    assert model.arch == tuple(arch)
    rescored = evaluate_arch(model, cfg, arch, torch.device("cpu"))["dfr"]
    assert rescored == pytest.approx(dfr, abs=1e-6)  # the exported model is the scored path
    store = ray_session.get_actor("tts_test_store", namespace=sharing.namespace)
    ray_session.kill(store)
    with pytest.raises(ValueError, match="no GPU"):
        tts_supernet_trainable(cfg, sharing, gpus_per_trial=0.5)
