"""Node-kill drills (framework: running one and its report; catalog: the drills; kafka_drills: Kafka mode's;
net_drills: partitions and slow links between hosts; delivery: what the system holds of what a drill posted)."""

from labctl.drills.catalog import (
    cluster_loss,
    config_loss,
    consumer_crash,
    logging_freeze,
    logging_loss,
    map_hard,
    map_lab,
    member_freeze,
    member_loss,
    messages_freeze,
    queue_lab,
    rejoin,
    retry,
)
from labctl.drills.framework import DRILLS, DrillError, DrillRun, run_drill
from labctl.drills.kafka_drills import broker_loss, rebalance
from labctl.drills.net_drills import flaky_link, partition_bridge, partition_minority, partition_queue_owner, slow_link
from labctl.drills.report import Report

__all__ = ["DRILLS", "DrillError", "DrillRun", "Report", "run_drill", "broker_loss", "cluster_loss", "config_loss",
           "consumer_crash", "logging_freeze", "logging_loss", "map_hard", "map_lab", "member_freeze", "member_loss",
           "messages_freeze", "queue_lab", "rebalance", "rejoin", "retry", "partition_minority",
           "partition_queue_owner", "partition_bridge", "slow_link", "flaky_link"]
