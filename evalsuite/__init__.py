"""evalsuite: how well does a text-to-image model follow prompts and render text, and did a change make it worse?"""

__version__ = "0.1.0"


def run(*args, **kwargs):
    """Generate (and score) a prompt set with backends into a run folder. See evalsuite.runner.run."""
    from .runner import run as _run

    return _run(*args, **kwargs)


__all__ = ["run", "__version__"]
