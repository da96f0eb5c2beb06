"""evalsuite: how well does a text-to-image model follow prompts and render text, and did a change make it worse?"""

__version__ = "0.1.0"


def run(*args, **kwargs):
    """Generate (and score) a prompt set with backends into a run folder. See evalsuite.runner.run."""
    from .runner import run as _run

    return _run(*args, **kwargs)


def score(*args, **kwargs):
    """(Re)score a run folder, doing only work not already done. See evalsuite.scoring.score_run."""
    from .scoring import score_run

    return score_run(*args, **kwargs)


def load_scores(*args, **kwargs):
    """The score table of a run folder (pandas DataFrame). See evalsuite.scoring.load_scores."""
    from .scoring import load_scores as _load

    return _load(*args, **kwargs)


def aggregate(*args, **kwargs):
    """Means/rates with 95% CIs over prompts per backend (or by=...). See evalsuite.scoring.aggregate."""
    from .scoring import aggregate as _aggregate

    return _aggregate(*args, **kwargs)


def agree(*args, **kwargs):
    """Agreement of each text scorer with human labels (accuracy, kappa, Spearman). See evalsuite.agree.agree."""
    from .agree import agree as _agree

    return _agree(*args, **kwargs)


__all__ = ["run", "score", "load_scores", "aggregate", "agree", "__version__"]
