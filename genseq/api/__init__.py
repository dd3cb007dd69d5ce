"""The Python API: prepare data, plan and train runs, load a model and sample, encode files, list runs.

This is the one place that joins sources, tokenizers, the model, the rules and the outputs; the CLI and the
studio are thin layers over it. Each room holds one job: `data`, `runs`, `model`, `request`, `encode`, `export`,
`progress_samples` (samples while a model learns).
"""

from genseq.api.data import PreparedData, corpus_summaries, prepare_data
from genseq.api.encode import EncodedFile, Encoding, encode_files
from genseq.api.model import DISTRIBUTION_OPTIONS, EvalResult, TrainedModel, export_checkpoint, load
from genseq.api.request import PreparedSample, SampleRequest
from genseq.api.runs import DEFAULT_RUNS, Runs, find_runs, list_runs, plan, train

__all__ = ["DEFAULT_RUNS", "DISTRIBUTION_OPTIONS", "EncodedFile", "Encoding", "EvalResult", "PreparedData",
           "PreparedSample", "Runs", "SampleRequest", "TrainedModel", "corpus_summaries", "encode_files",
           "export_checkpoint", "find_runs", "list_runs", "load", "plan", "prepare_data", "train"]
