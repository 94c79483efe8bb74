"""Show an invoice's original to a person: PDF pages as images, XML e-invoices
as a readable document, CSV as a table.

Renderers read the stored bytes themselves, never our extracted fields, so a
clerk can compare what the document says with what we read from it.
"""

from invoices.documents.errors import DocumentUnreadable, PageOutOfRange
from invoices.documents.pdf import pdf_page_count, render_pdf_page

__all__ = ["DocumentUnreadable", "PageOutOfRange", "pdf_page_count", "render_pdf_page"]
