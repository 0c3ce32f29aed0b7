"""The user's own training data, read and judged without changing it (`advisor data check`).

One job per module:
  sources    PATH -> the files to read and their format (file, folder, saved `datasets` folder, cached hub id)
  readers    rows from each format, streamed in bounded memory (jsonrows, csvrows, columnar; textio under the text formats)
  detect     which TRL dataset type (or community format) the columns are, and the mapping to TRL's form
  validate   problems per row, grouped by kind with counts and first row numbers
  lengths    token lengths with the model's own tokenizer, or a stated approximation
  recommend  sequence length, packing, and the memory estimate priced at the longest batch
  check      the whole pass, as plain data (schema advisor.data/1)
  render     the terminal view of that data

Nothing here imports torch, transformers, textual or the `datasets` library: saved `datasets` folders are read
with pyarrow directly, chat templates are rendered with jinja2 as transformers does.
"""

SCHEMA = "advisor.data/1"
