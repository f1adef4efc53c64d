"""XML Schemas (XSD 1.0) of the XML export, one per dataset, generated from datasets.py.

The same text is shipped in ``marketexport/schemas/<dataset>.xsd`` (a test keeps the two
equal) and printed by ``marketexport schema DATASET --xsd``. Every column is optional in
a row, because an export may select any columns in any order and leaves out null values.
"""

from __future__ import annotations

from importlib import resources
from xml.sax.saxutils import escape, quoteattr

from ...datasets import DATASETS, DECIMAL_TYPE, Column, Dataset

_KIND_TYPES = {
    "text": "text",
    "id": "text",
    "decimal": "decimal38",
    "integer": "xs:long",
    "boolean": "xs:boolean",
    "time": "utcDateTime",
}
_ROOT_ATTRIBUTES = {
    "marketexport": "version of marketexport that wrote the file",
    "time_unit": "unit of the times in the file: ms, us or ns",
    "columns": "the exported columns, in order, separated by spaces",
    "exchanges": "the exchanges the export was limited to, separated by spaces",
    "symbols": "the symbols the export was limited to, separated by spaces",
    "start": "start of the exported time range, inclusive (ISO 8601 UTC)",
    "end": "end of the exported time range, exclusive (ISO 8601 UTC)",
}
_TYPES = """\
  <xs:complexType name="text">
    <xs:annotation><xs:documentation>Text. With escaped="true", each \\uHHHH in it stands for
      one character (a backslash, or a character XML 1.0 cannot carry).</xs:documentation>
    </xs:annotation>
    <xs:simpleContent>
      <xs:extension base="xs:string">
        <xs:attribute name="escaped" type="xs:boolean" use="optional"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:simpleType name="decimal38">
    <xs:annotation><xs:documentation>An exact decimal in plain notation (Arrow
      decimal128(38, SCALE)).</xs:documentation></xs:annotation>
    <xs:restriction base="xs:decimal">
      <xs:totalDigits value="38"/>
      <xs:fractionDigits value="SCALE"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="utcDateTime">
    <xs:annotation><xs:documentation>A UTC instant, ISO 8601 with Z.</xs:documentation>
    </xs:annotation>
    <xs:restriction base="xs:dateTime">
      <xs:pattern value=".+Z"/>
    </xs:restriction>
  </xs:simpleType>
"""


def _documentation(text: str, indent: str) -> str:
    return (
        f"{indent}<xs:annotation><xs:documentation>{escape(text)}</xs:documentation>"
        "</xs:annotation>\n"
    )


def _column_element(column: Column) -> str:
    unit = f" [{column.unit}]" if column.unit else ""
    required = "" if column.nullable else " (always present when the column is exported)"
    return (
        f'          <xs:element name="{column.name}" type="{_KIND_TYPES[column.kind]}" '
        'minOccurs="0">\n'
        + _documentation(f"{column.kind}{unit}: {column.doc}{required}", "            ")
        + "          </xs:element>\n"
    )


def dataset_xsd(spec: Dataset) -> str:
    """The XSD of ``spec``'s XML export."""
    columns = "".join(_column_element(column) for column in spec.columns)
    attributes = "".join(
        f'      <xs:attribute name="{name}" type="xs:string" use="optional">\n'
        + _documentation(doc, "        ")
        + "      </xs:attribute>\n"
        for name, doc in _ROOT_ATTRIBUTES.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">\n'
        + _documentation(
            f"marketexport XML export of the {spec.name} dataset: {spec.doc}. Generated from "
            "marketexport's dataset definitions; one row element per row, one child element "
            "per exported column.",
            "  ",
        )
        + _TYPES.replace("SCALE", str(DECIMAL_TYPE.scale))
        + f"  <xs:element name={quoteattr(spec.name)}>\n"
        + "    <xs:complexType>\n"
        + "      <xs:sequence>\n"
        + '        <xs:element name="row" minOccurs="0" maxOccurs="unbounded">\n'
        + "          <xs:complexType>\n"
        + "            <xs:all>\n"
        + columns.replace("          <xs:element", "              <xs:element")
        .replace("            <xs:annotation", "                <xs:annotation")
        .replace("          </xs:element>", "              </xs:element>")
        + "            </xs:all>\n"
        + "          </xs:complexType>\n"
        + "        </xs:element>\n"
        + "      </xs:sequence>\n"
        + attributes
        + "    </xs:complexType>\n"
        + "  </xs:element>\n"
        + "</xs:schema>\n"
    )


def shipped_xsd(dataset: str) -> str:
    """The XSD file shipped with marketexport for ``dataset``."""
    return (resources.files("marketexport") / "schemas" / f"{dataset}.xsd").read_text("utf-8")


def write_schemas(directory: str) -> list[str]:
    """Write every dataset's XSD into ``directory`` (how the shipped files are made)."""
    from pathlib import Path

    written = []
    for name, spec in DATASETS.items():
        target = Path(directory) / f"{name}.xsd"
        target.write_text(dataset_xsd(spec), encoding="utf-8")
        written.append(str(target))
    return written
