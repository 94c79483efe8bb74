"""Reading parsed e-invoice XML: a path table walked once per element, and the XML extractor base.

E-invoice syntaxes are fixed trees of child elements, so every field is a plain
child path ("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID"). `ChildPaths`
compiles a set of such paths into a tree of tag names and collects all of them in
a single walk, about three times faster than one XPath or find() call per field,
which matters at thousands of invoices per second.
"""

from __future__ import annotations

from lxml import etree

from invoices.extract.base import ExtractedInvoice, ExtractedLine, Extractor, InvalidInvoice, VatBreakdown
from invoices.extract.common import ValueReader, complete_amount_due, fill_confidence, one_line
from invoices.extract.xmlsafe import forget_shared, parse_xml_shared, qualified_root_tag

# Plain text fields every XML reader copies as read (one table for UBL and CII).
TEXT_FIELDS = (
    "profile",
    "invoice_number",
    "type_code",
    "currency",
    "buyer_reference",
    "purchase_order_reference",
    "seller_country",
    "buyer_country",
    "payment_iban",
)

Found = dict[str, "etree._Element | list[etree._Element]"]


def clark(step: str, namespaces: dict[str, str]) -> str:
    """'cbc:ID' -> '{urn:...CommonBasicComponents-2}ID'."""
    prefix, _, local = step.partition(":")
    return f"{{{namespaces[prefix]}}}{local}"


class ChildPaths:
    """Named child-element paths, read together in one walk.

    `paths` maps a name to "prefix:A/prefix:B"; alternatives are written "p1|p2" and
    the first match in document order wins, as XPath's string() would give. Names in
    `repeated` collect every match as a list, in document order.
    """

    def __init__(self, paths: dict[str, str], namespaces: dict[str, str], *, repeated: frozenset[str] = frozenset()):
        # tag -> (names whose path ends here, subtree of further steps)
        tree: dict[str, tuple[list[tuple[str, bool]], dict]] = {}
        for name, alternatives in paths.items():
            for path in alternatives.split("|"):
                node = tree
                steps = [clark(step.strip(), namespaces) for step in path.split("/")]
                for depth, tag in enumerate(steps):
                    ends, subtree = node.setdefault(tag, ([], {}))
                    if depth == len(steps) - 1:
                        ends.append((name, name in repeated))
                    node = subtree
        self._tree = _freeze(tree)

    def read(self, element: etree._Element) -> Found:
        """Elements found under `element`: name -> first element (or list, for repeated names)."""
        found: Found = {}
        _walk(element, self._tree, found)
        return found


# A frozen level: tag -> (names taking the first match, names collecting all matches, next level or None).
_Level = dict[str, tuple[tuple[str, ...], tuple[str, ...], "_Level | None"]]


def _freeze(tree: dict) -> _Level:
    return {
        tag: (
            tuple(name for name, is_repeated in ends if not is_repeated),
            tuple(name for name, is_repeated in ends if is_repeated),
            _freeze(subtree) if subtree else None,
        )
        for tag, (ends, subtree) in tree.items()
    }


def _walk(element: etree._Element, level: _Level, found: Found) -> None:
    # Plain iteration measured 4x faster than iterchildren(*tags) here (lxml 6.1).
    get = level.get
    for child in element:
        entry = get(child.tag)
        if entry is None:
            continue
        firsts, collects, deeper = entry
        for name in firsts:
            if name not in found:
                found[name] = child
        for name in collects:
            found.setdefault(name, []).append(child)
        if deeper is not None:
            _walk(child, deeper, found)


def text(found: Found, name: str) -> str:
    """Text of the element found under `name`, stripped; '' when absent."""
    element = found.get(name)
    if element is None or not element.text:
        return ""
    return element.text.strip()


def raw_text(found: Found, name: str) -> str | None:
    """Text of the element found under `name` as written, None when absent."""
    element = found.get(name)
    return element.text if element is not None else None


def attribute(found: Found, name: str, attr: str) -> str:
    """An attribute of the element found under `name`, stripped; '' when absent."""
    element = found.get(name)
    if element is None:
        return ""
    return (element.get(attr) or "").strip()


def repeated(found: Found, name: str) -> list[etree._Element]:
    """Every element collected under a repeated name (empty list when none)."""
    return found.get(name, [])


# Once the syntax's paths have found the elements under the same names, a VAT row, a line
# and the end of reading are the same for UBL and CII.


def vat_row_from(found: Found, reader: ValueReader) -> VatBreakdown:
    """A VAT breakdown row (BG-23) from the elements found under its field names."""
    return VatBreakdown(
        category=text(found, "category"),
        rate=reader.amount(raw_text(found, "rate"), "VAT category rate (BT-119)"),
        taxable_amount=reader.amount(raw_text(found, "taxable_amount"), "VAT category taxable amount (BT-116)"),
        tax_amount=reader.amount(raw_text(found, "tax_amount"), "VAT category tax amount (BT-117)"),
        exemption_reason=one_line(raw_text(found, "exemption_reason")),
        exemption_reason_code=text(found, "exemption_reason_code"),
    )


def line_from(found: Found, reader: ValueReader) -> ExtractedLine:
    """An invoice line (BG-25) from the elements found under its field names."""
    line_id = text(found, "line_id")
    where = f"Line {line_id}" if line_id else "A line"
    return ExtractedLine(
        line_id=line_id,
        name=one_line(raw_text(found, "name")),
        quantity=reader.amount(raw_text(found, "quantity"), f"{where}: quantity (BT-129)"),
        unit_code=attribute(found, "quantity", "unitCode"),
        net_price=reader.amount(raw_text(found, "net_price"), f"{where}: net price (BT-146)"),
        line_amount=reader.amount(raw_text(found, "line_amount"), f"{where}: net amount (BT-131)"),
        vat_category=text(found, "vat_category"),
        vat_rate=reader.amount(raw_text(found, "vat_rate"), f"{where}: VAT rate (BT-152)"),
    )


def finish_reading(invoice: ExtractedInvoice, found: Found, reader: ValueReader) -> ExtractedInvoice:
    """The reader's warnings, a missing seller name, the amount due and the confidence."""
    invoice.warnings.extend(reader.warnings)
    if not invoice.seller_name:
        invoice.warnings.append("The seller name (BT-27) is missing.")
    complete_amount_due(invoice, stated=raw_text(found, "amount_due") or "")
    fill_confidence(invoice)
    return invoice


class XmlExtractor(Extractor):
    """An extractor for one XML syntax, chosen by the document's root element.

    Subclasses list `root_tags` (Clark notation) and implement `read`, which turns a
    parsed root into an ExtractedInvoice. Parsing, detection and error wrapping live here
    so every XML format is hardened the same way.
    """

    root_tags: frozenset[str] = frozenset()
    syntax_name: str = "XML"

    def can_handle(self, content: bytes) -> bool:
        """True when the bytes parse as XML whose root element is one this syntax defines."""
        return qualified_root_tag(content) in self.root_tags

    def extract(self, content: bytes) -> ExtractedInvoice:
        """Parse with the hardened parser and read the invoice; InvalidInvoice on any failure."""
        notes: list[str] = []
        try:
            root = parse_xml_shared(content, warnings=notes)
            if root.tag not in self.root_tags:
                raise InvalidInvoice(f"The XML is not a {self.syntax_name} document (root element {root.tag}).")
            invoice = self.read(root)
        except InvalidInvoice:
            raise
        except Exception as exc:
            raise InvalidInvoice(f"The {self.syntax_name} document could not be read: {exc}") from exc
        finally:
            forget_shared()
        invoice.warnings[:0] = notes
        invoice.xml = content
        return invoice

    def read(self, root: etree._Element) -> ExtractedInvoice:  # pragma: no cover - interface
        """Turn a parsed document of this syntax into an ExtractedInvoice."""
        raise NotImplementedError
