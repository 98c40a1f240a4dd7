"""MQTT adapter (and the RabbitMQ/AMQP backend): subscribe, decode, micro-batch, store through the pipeline, ack after commit."""

from ingest.amqp import AmqpConsumer, AmqpOptions, parse_amqp_urls
from ingest.consumer import MqttConsumer, parse_mqtt_url
from ingest.errors import BrokerConnectionError, BrokerUrlError, IngestError
from ingest.worker import IngestWorker

__all__ = ["AmqpConsumer", "AmqpOptions", "BrokerConnectionError", "BrokerUrlError", "IngestError", "IngestWorker",
           "MqttConsumer", "parse_amqp_urls", "parse_mqtt_url"]
