"""The one error base class of the pipeline.

Every error that means *bad input* (params, a source package, a data or model file, a training set-up)
derives from :class:`PipelineError`. A stage entry point (:func:`pipeline.stages.run_stage`) catches it and
prints its message as one line, with no traceback; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class PipelineError(ValueError):
    """Bad input to a stage; the message names the key, file or model at fault."""
