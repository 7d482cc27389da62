"""The CLI prints domainfit's own warnings as one plain line; other warnings keep Python's format."""

import io
import warnings

from domainfit.cli.app import _show_warning
from domainfit.data.chunking import TruncationWarning


def test_domainfit_warnings_are_one_line_and_others_unchanged():
    out = io.StringIO()
    _show_warning(TruncationWarning("3 of 9 documents exceed the window"), TruncationWarning, "x.py", 7, out)
    assert out.getvalue() == "warning: 3 of 9 documents exceed the window\n"
    other = io.StringIO()
    _show_warning(UserWarning("plain"), UserWarning, "x.py", 7, other, line="")
    assert other.getvalue() == warnings.formatwarning(UserWarning("plain"), UserWarning, "x.py", 7, line="")
