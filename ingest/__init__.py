"""MQTT adapter: subscribe, decode, micro-batch, store through the pipeline, ack after commit."""

from ingest.consumer import MqttConsumer, parse_mqtt_url
from ingest.errors import BrokerUrlError, IngestError
from ingest.worker import IngestWorker

__all__ = ["BrokerUrlError", "IngestError", "IngestWorker", "MqttConsumer", "parse_mqtt_url"]
