"""A Piper text-to-speech worker, run by the Python of the virtualenv that holds piper-tts (not edge-s2s's).

Piper brings its own onnxruntime, and the project's environment may hold onnxruntime-gpu instead
(the two must never share one environment), so `synth.PiperWorker` installs piper-tts and a voice
into a separate virtualenv and talks to this script over pipes. It imports nothing from edge_s2s.

Protocol: one JSON object a line on stdin, {"text", "out", "length_scale", "noise_scale",
"noise_w_scale"}; the voice says `text` into the wav `out` and the worker answers one line,
"ok" or "error: ...". argv[1] is the voice model (.onnx, its config beside it).
"""

import json
import sys
import wave


def main() -> int:
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(sys.argv[1])
    for line in sys.stdin:
        try:
            req = json.loads(line)
            cfg = SynthesisConfig(length_scale=req["length_scale"], noise_scale=req["noise_scale"],
                                  noise_w_scale=req["noise_w_scale"])
            with wave.open(req["out"], "wb") as wav:
                voice.synthesize_wav(req["text"], wav, syn_config=cfg)
            print("ok", flush=True)
        except Exception as e:  # the parent turns this into one error line
            print(f"error: {type(e).__name__}: {e}".replace("\n", " "), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
