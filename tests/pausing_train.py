"""``meta-rl train`` that waits to be killed once a given round is saved (resume tests).

Usage: ``python -m tests.pausing_train ROUND TRAIN-ARGUMENTS...``. The run says
``paused after round ROUND`` on stderr once that round's state is on disk, then sleeps; it
ends like ``meta-rl`` does on SIGTERM (status 130).
"""

from __future__ import annotations

import signal
import sys
import time

import torch

from meta_rl.cli import _terminate, build_parser, train_config
from meta_rl.training.trainer import train


def main(argv: list[str]) -> int:
    pause_after, args = int(argv[0]), build_parser().parse_args(["train", *argv[1:]])

    def pause(round_: int) -> None:
        if round_ == pause_after:
            print(f"paused after round {round_}", file=sys.stderr, flush=True)
            time.sleep(120)

    torch.set_num_threads(1)  # as meta-rl does: float sums depend on the thread count
    signal.signal(signal.SIGTERM, _terminate)
    try:
        trained, _ = train(train_config(args), on_saved=pause)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    trained.save(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
