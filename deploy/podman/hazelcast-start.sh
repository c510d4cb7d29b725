#!/bin/sh
# The stand-in member image's start: the same environment variables the official image reads.
set -e
agent=""
if [ -n "$PROMETHEUS_PORT" ]; then
    agent="-javaagent:/opt/hazelcast/jmx_prometheus_javaagent.jar=${PROMETHEUS_PORT}:${PROMETHEUS_CONFIG}"
fi
# shellcheck disable=SC2086
exec java $JAVA_OPTS $agent -Dhazelcast.config="${HAZELCAST_CONFIG:-/opt/hazelcast/config/hazelcast-docker.xml}" \
    -cp /opt/hazelcast/hazelcast.jar com.hazelcast.core.server.HazelcastMemberStarter
