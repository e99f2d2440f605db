"""Ray for the ``cluster`` kind: generated cluster configs (``configs``), the local node
provider loaded by Ray's autoscaler (``local_provider``), head processes and their ownership
(``head``), the Ray head's HTTP API (``rest``) and pulling node folders (``files``).

Nothing here imports Ray at import time except ``local_provider`` (imported only by Ray's own
monitor process).
"""
