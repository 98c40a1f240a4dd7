"""The engine's adapters: MQTT ingest (subscribe, decode, micro-batch, store through the
pipeline, ack after commit) on Mosquitto or on a RabbitMQ cluster (AMQP), the HTTP ingest
listener (OsmAnd / Traccar Client, OwnTracks HTTP) and the signed webhook deliveries out."""

from ingest.amqp import AmqpConsumer, AmqpOptions, parse_amqp_urls
from ingest.consumer import MqttConsumer, parse_mqtt_url
from ingest.errors import BrokerConnectionError, BrokerUrlError, IngestError
from ingest.http import HttpIngest
from ingest.webhooks import WebhookDispatcher
from ingest.worker import IngestWorker

__all__ = ["AmqpConsumer", "AmqpOptions", "BrokerConnectionError", "BrokerUrlError", "HttpIngest", "IngestError",
           "IngestWorker", "MqttConsumer", "WebhookDispatcher", "parse_amqp_urls", "parse_mqtt_url"]
