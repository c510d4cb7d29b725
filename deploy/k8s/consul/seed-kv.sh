#!/bin/sh
# What the services read from Consul KV (labctl consul-seed writes the same on one machine): the cluster's
# name and members (the ConfigMap lab-cluster, through the container's environment) and the object names
# (lab_common/contracts.py). The dev agent keeps nothing, so its container's postStart hook runs this at
# every start; until it has, starting copies wait for the keys (lab_common/consul_support.py).
set -e
export CONSUL_HTTP_ADDR=127.0.0.1:8500
tries=0
until consul kv put lab/hazelcast/cluster-name "$LAB_CLUSTER_NAME" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || exit 1
  sleep 1
done
consul kv put lab/hazelcast/members "$LAB_HZ_MEMBERS"
consul kv put lab/names/logging-map messages
consul kv put lab/names/messages-queue messages-queue
consul kv put lab/names/received-map received
