"""The errors of the document renderers; their messages are shown to users as they are."""


class DocumentUnreadable(Exception):
    """The original cannot be shown: the renderer cannot open it, or it is not a kind we show."""


class PageOutOfRange(Exception):
    """The PDF has no page with that number."""
