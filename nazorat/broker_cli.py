"""``nazorat broker ...``: the RabbitMQ cluster backend's commands (deploy/rabbitmq.md).

``nazorat broker provision`` declares the topology (exchange, partitions, bindings), the
engine's accounts and the devices' accounts through the management HTTP API, idempotently;
new passwords are printed once (``name<TAB>password``, as ``nazorat devices credentials``
prints them). ``nazorat broker cluster`` starts a local 3-node cluster of our own for a
try-out (its admin password and URLs printed), until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from telemetry.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    broker = sub.add_parser("broker", help="the RabbitMQ cluster backend: provisioning and a local cluster")
    cmds = broker.add_subparsers(dest="broker_command", required=True)
    prov = cmds.add_parser("provision", help="declare topology, the engine's and the devices' accounts (idempotent)")
    prov.add_argument("--http-url", help="management API URL(s), comma-separated (env NAZORAT_RABBITMQ_HTTP_URLS)")
    prov.add_argument("--admin-user", help="management account (env NAZORAT_RABBITMQ_ADMIN_USER);"
                                           " its password from env NAZORAT_RABBITMQ_ADMIN_PASSWORD")
    prov.add_argument("--partitions", type=int, help="partition queues (env NAZORAT_AMQP_PARTITIONS, default 4)")
    prov.add_argument("--devices", nargs="*", default=[], help="device ids to give accounts")
    prov.add_argument("--devices-file", type=Path, help="one device id a line")
    prov.add_argument("--engine-account", action="append",
                      help="engine accounts (default nazorat-engine; repeat for nazorat-engine-<worker>)")
    prov.add_argument("--rotate", action="store_true", help="new passwords for existing accounts too")
    prov.add_argument("--repartition", action="store_true", help="allow a partition count other than the cluster's")
    prov.add_argument("--leader-locator", choices=("balanced", "client-local"), default="balanced",
                      help="where new partitions' quorum leaders go")
    local = cmds.add_parser("cluster", help="start a local 3-node RabbitMQ cluster of our own (a try-out), until Ctrl-C")
    local.add_argument("--dir", type=Path, help="its folder (default DATA_DIR/rabbitmq-cluster; removed at the end)")
    local.add_argument("--nodes", type=int, default=3)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.broker_command == "cluster":
        return _local_cluster(args, settings)
    from nazorat.services.errors import ServiceError
    from nazorat.services.rabbit_provision import RabbitAdmin, provision

    urls = args.http_url or settings.rabbitmq_http_urls
    password = os.environ.get("NAZORAT_RABBITMQ_ADMIN_PASSWORD")
    if not urls or not password:
        print("nazorat: --http-url (or NAZORAT_RABBITMQ_HTTP_URLS) and NAZORAT_RABBITMQ_ADMIN_PASSWORD are required",
              file=sys.stderr)
        return 2
    devices = list(args.devices)
    if args.devices_file:
        devices += [line.strip() for line in args.devices_file.read_text().splitlines() if line.strip()]
    admin = RabbitAdmin([u.strip() for u in urls.split(",") if u.strip()],
                        args.admin_user or settings.rabbitmq_admin_user, password)
    try:
        result = provision(admin, partitions=args.partitions or settings.amqp_partitions, devices=devices,
                           engine_accounts=tuple(args.engine_account or ["nazorat-engine"]), rotate=args.rotate,
                           repartition=args.repartition, leader_locator=args.leader_locator)
    except (ServiceError, ValueError) as exc:
        print(f"nazorat: {exc}", file=sys.stderr)
        return 1
    for name, pw in result.passwords.items():
        print(f"{name}\t{pw}")
    print(f"{result.partitions} partitions ({len(result.created_queues)} created now); {len(devices)} devices;"
          f" {len(result.passwords)} new passwords above (shown once)", file=sys.stderr)
    return 0


def _local_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from nazorat.services.rabbitmq import ADMIN_USER, RabbitCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"nazorat: {reason}", file=sys.stderr)
        return 1
    cluster = RabbitCluster(args.dir or Path(settings.data_dir).resolve() / "rabbitmq-cluster", size=args.nodes)
    print(f"starting {args.nodes} RabbitMQ nodes (about a minute)...", file=sys.stderr, flush=True)
    cluster.start()
    try:
        print(f"NAZORAT_RABBITMQ_HTTP_URLS={','.join(cluster.http_urls())}")
        print(f"NAZORAT_RABBITMQ_ADMIN_USER={ADMIN_USER}")
        print(f"NAZORAT_RABBITMQ_ADMIN_PASSWORD={cluster.admin_password}")
        print("MQTT ports for devices: " + ", ".join(str(n.mqtt_port) for n in cluster.nodes))
        print("AMQP URLs for the engine (after `nazorat broker provision`): "
              + ",".join(f"amqp://nazorat-engine:PASSWORD@{cluster.host}:{n.amqp_port}/%2F" for n in cluster.nodes))
        print("Stop with Ctrl-C.", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    return 0


__all__ = ["add_parser", "run"]
