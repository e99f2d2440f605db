"""The SSH machinery of the ``remote`` kind.

* :mod:`~runyard.compute.remote.ssh.connection`: paramiko connections, authentication, the pool;
* :mod:`~runyard.compute.remote.ssh.hostkeys`: known_hosts, fingerprints, the pinned host key;
* :mod:`~runyard.compute.remote.ssh.agent`: installing and calling the helper on the host;
* :mod:`~runyard.compute.remote.ssh.hostagent`: that helper (standard library only, runs on
  the host);
* :mod:`~runyard.compute.remote.ssh.sync`: code up by content, artifacts down by offset.

Importing this package imports nothing heavy; paramiko is loaded by the modules that use it.
"""
