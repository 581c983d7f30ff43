"""A user's own network factory, named by import path (``--arch`` and ``--student module.path:make``),
called and checked the same way for teachers and students.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from .errors import QkdError, first_line


def module_factory(path: str, obj: Any, option: str) -> Callable[[tuple[int, int, int], int], nn.Module]:
    """A user's factory ``obj`` (named ``path`` on ``option``) as ``make(image_shape, n_classes)``, which
    calls it and checks that it made an ``nn.Module``; a one-line QkdError where it cannot be one.

    Shared by ``--arch`` and ``--student``: a function, or an ``nn.Module`` class, called as
    ``factory(image_shape, n_classes)`` with ``image_shape`` a tuple (C, H, W).
    """
    attribute = path.split(":", 1)[1]
    usage = f"{attribute}(image_shape, n_classes) returning a torch.nn.Module"
    if isinstance(obj, nn.Module) or (isinstance(obj, type) and not issubclass(obj, nn.Module)) or not callable(obj):
        what = "a torch.nn.Module instance" if isinstance(obj, nn.Module) else (
            f"the class {obj.__name__}, not an nn.Module" if isinstance(obj, type) else _a(type(obj).__name__))
        raise QkdError(f"{option} {path} is {what}; name a factory: {usage} (or an nn.Module class taking "
                       f"those two)")
    try:
        inspect.signature(obj).bind((1, 1, 1), 2)
    except TypeError:
        raise QkdError(f"{option} {path} takes {inspect.signature(obj)}; it is called as {usage}") from None
    except ValueError:
        pass  # no signature to read (a builtin): its call says

    def make(image_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        shape = tuple(int(s) for s in image_shape)
        try:
            model = obj(shape, int(n_classes))
        except QkdError:
            raise
        except Exception as exc:  # a user's code may fail in any way: the message says which and why
            first = first_line(exc)
            raise QkdError(f"{option} {path}: {attribute}({shape}, {n_classes}) raised {type(exc).__name__}: "
                           f"{first}") from exc
        if not isinstance(model, nn.Module):
            raise QkdError(f"{option} {path}: {attribute}({shape}, {n_classes}) returned "
                           f"{'None' if model is None else _a(type(model).__name__)}, not a torch.nn.Module")
        return model

    return make


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"
