"""One RabbitMQ cluster of the tier's own (3 nodes, from scratch) for the module, with the
topology and the accounts provisioned as `nazorat broker provision` does. The quorum
leaders are all placed on the first node (``client-local`` through its management API),
so the kill test takes down the node holding every leader."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from nazorat.services.errors import ServiceError
from nazorat.services.rabbit_provision import RabbitAdmin, provision
from nazorat.services.rabbitmq import ADMIN_USER, RabbitCluster, unavailable_reason
from tests.cluster.harness import PARTITIONS, Rabbit
from tests.server_dirs import server_dir

DEVICES = 20


@pytest.fixture(scope="module")
def rabbit() -> Iterator[Rabbit]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"RabbitMQ cluster tier skipped: {reason} (`make test` installs it from Debian when root)")
    # Ports are picked free and then bound by the Erlang nodes a moment later: another
    # process on the machine may take one in between (seen once: a node's management
    # listener failed to bind and the node stopped). One more try, on fresh ports.
    for attempt in (1, 2):
        cluster = RabbitCluster(server_dir("rabbit"))
        try:
            cluster.start()
            break
        except ServiceError as exc:
            cluster.stop()
            if attempt == 2:
                raise
            warnings.warn(f"RabbitMQ test cluster did not start, retrying on fresh ports: {str(exc)[:200]}",
                          stacklevel=1)
    try:
        admin = RabbitAdmin(cluster.http_urls(), ADMIN_USER, cluster.admin_password)
        result = provision(admin, partitions=PARTITIONS, devices=[f"cd-{i:03d}" for i in range(DEVICES)],
                           leader_locator="client-local")
        engine = result.passwords.pop("nazorat-engine")
        yield Rabbit(cluster, engine, result.passwords)
    finally:
        cluster.stop()
