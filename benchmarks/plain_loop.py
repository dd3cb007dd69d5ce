"""The plain PyTorch baseline every genseq figure is compared with, trained on its own (benchmarks/common.py).

    python -m benchmarks.plain_loop --minutes 10 [--tuned] [--data FILE]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import add_data_argument, load_text, train

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tuned", action="store_true")
    add_data_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(train(args.minutes, tuned=args.tuned, data=load_text(args.data)))
