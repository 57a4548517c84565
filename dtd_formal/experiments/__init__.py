"""The paper's studies as functions (used by ``dtd-formal reproduce``)."""
