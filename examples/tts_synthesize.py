"""Write a WAV for a sentence with a standalone TTS model (Griffin-Lim vocoder).

    # with a model exported by examples/tts_supernet_search.py (or save_tts_model)
    python examples/tts_synthesize.py --model tts_best.pt --text "The boat left at noon." --out noon.wav
    # or first train one architecture from scratch on a corpus and save it
    python examples/tts_synthesize.py --corpus data/espeak300 --arch trans4 --steps 2000 \
        --save tts_trans4.pt --text "The boat left at noon." --out noon.wav
"""

from __future__ import annotations

import argparse

import torch

from seminas_tune.supernet.tts import TTSNet, TTSTaskConfig, save_tts_model, synthesize_to_wav, train_steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", required=True)
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--model", help="model saved by save_tts_model")
    p.add_argument("--corpus", help="train a model on this LJSpeech-layout corpus first")
    p.add_argument(
        "--arch",
        default="trans4",
        help="one op for every layer, or a comma-separated op per layer (encoder, then decoder)",
    )
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--save", default="tts_model.pt")
    p.add_argument("--tiny", action="store_true", help="CPU-sized model (quick check, unintelligible)")
    p.add_argument("--griffin-lim-iters", type=int, default=60)
    a = p.parse_args(argv)
    model_path = a.model
    if model_path is None:
        if a.corpus is None:
            p.error("give --model, or --corpus to train one")
        cfg = TTSTaskConfig.tiny(a.corpus) if a.tiny else TTSTaskConfig(data_root=a.corpus)
        n_layers = cfg.model.n_encoder + cfg.model.n_decoder
        arch = tuple(a.arch.split(",")) if "," in a.arch else (a.arch,) * n_layers
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = TTSNet(cfg.model, arch).to(device)
        print(train_steps(model, cfg, arch, a.steps, device))
        model_path = save_tts_model(model.cpu(), a.save, cfg.mel)
        print(f"saved {model_path}")
    print(f"wrote {synthesize_to_wav(model_path, a.text, a.out, a.griffin_lim_iters)}")


if __name__ == "__main__":
    main()
