"""The raw lake's layout and manifest format: one definition, for the writer and every reader.

:mod:`.layout` names every path (data files by topic, date, partition, offsets and source
generation; manifests; the source file) and parses names back; :mod:`.manifest` is the
manifest format (which files a complete roll has, each line's Kafka offset) and the rules read
from it (resume offsets, orphans, the audit). The lake writer writes with them, the ETL and the
tests read with them.
"""
