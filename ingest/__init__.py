"""The engine's adapters: MQTT ingest (subscribe, decode, micro-batch, store through the
pipeline, ack after commit), the HTTP ingest listener (OsmAnd / Traccar Client, OwnTracks
HTTP) and the signed webhook deliveries out."""

from ingest.consumer import MqttConsumer, parse_mqtt_url
from ingest.errors import BrokerUrlError, IngestError
from ingest.http import HttpIngest
from ingest.webhooks import WebhookDispatcher
from ingest.worker import IngestWorker

__all__ = ["BrokerUrlError", "HttpIngest", "IngestError", "IngestWorker", "MqttConsumer", "WebhookDispatcher",
           "parse_mqtt_url"]
