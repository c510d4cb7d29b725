// The status page: asks /status.json every second and redraws. Text goes in with textContent only,
// so a message's text can never become markup.
"use strict";

const REFRESH_MS = 1000;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  return td;
}

function stateCell(row, up, title) {
  const td = row.insertCell();
  const badge = document.createElement("span");
  badge.className = "state " + (up ? "up" : "down");
  badge.textContent = up ? "up" : "down";
  if (title) badge.title = title;
  td.appendChild(badge);
}

function fill(tableId, items, draw) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  for (const item of items) draw(body.insertRow(), item);
}

function facts(listId, pairs) {
  const list = document.getElementById(listId);
  list.replaceChildren();
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value === null || value === undefined ? "–" : String(value);
    list.append(dt, dd);
  }
}

function summary(checks) {
  const parts = [];
  for (const [name, check] of Object.entries(checks || {})) {
    const detail = check.detail;
    if (detail && typeof detail === "object") {
      const shown = Object.entries(detail).filter(([, v]) => v !== null && typeof v !== "object");
      parts.push(`${name}: ` + shown.map(([k, v]) => `${k} ${v}`).join(", "));
    } else {
      parts.push(`${name}: ${detail}`);
    }
  }
  return parts.join("; ");
}

function drawBars(members) {
  const box = document.getElementById("distribution");
  box.replaceChildren();
  const largest = Math.max(1, ...members.map((m) => (m.owned_entries || 0) + (m.backup_entries || 0)));
  for (const m of members) {
    const label = document.createElement("div");
    label.textContent = m.address;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.member = m.address;
    for (const [kind, value] of [["owned", m.owned_entries], ["backup", m.backup_entries]]) {
      const part = document.createElement("span");
      part.className = kind;
      part.style.width = `${(100 * (value || 0)) / largest}%`;
      part.title = `${kind}: ${value ?? "unknown"}`;
      bar.appendChild(part);
    }
    box.append(label, bar);
  }
}

function render(status) {
  document.getElementById("updated").textContent =
    "updated " + new Date(status.at * 1000).toLocaleTimeString() + " (every second)";
  const problem = document.getElementById("problem");
  problem.hidden = !status.error;
  problem.textContent = status.error || "";

  // a system without Hazelcast members (the lab's Task 1): no cluster to show
  document.getElementById("members-section").hidden = !status.cluster;
  document.getElementById("no-cluster").hidden = status.cluster;
  const queueOwner = status.queue ? status.queue.owner : null;
  fill("members", status.members, (row, m) => {
    row.id = "member-" + m.address;
    row.dataset.state = m.up ? "up" : "down";
    cell(row, m.address);
    stateCell(row, m.up, m.metrics_error);
    cell(row, m.partitions, "num");
    cell(row, m.owned_entries, "num");
    cell(row, m.backup_entries, "num");
    cell(row, queueOwner === m.address ? "owner" : "");
  });
  drawBars(status.members);

  const q = status.queue;
  facts("queue", q ? [
    ["name", q.name], ["size", q.size], ["owner", q.owner],
    ["offers per second", q.offers_per_second], ["polls per second", q.polls_per_second],
  ] : [["none", "the facade only logs a POST: it offers it to no queue"]]);
  renderTopic(status.topic);

  fill("copies", status.copies, (row, c) => {
    row.id = "copy-" + (c.name || c.address);
    row.dataset.state = c.healthy ? "up" : "down";
    row.dataset.service = c.service;
    cell(row, c.service);
    cell(row, c.name);
    cell(row, c.address);
    stateCell(row, c.healthy, c.error);
    cell(row, c.error || summary(c.checks));
  });

  facts("counts", status.cluster ? clusterCounts(status) : memoryCounts(status.copies));

  fill("recent", status.recent, (row, m) => {
    cell(row, m.uuid.slice(0, 8)).title = m.uuid;
    cell(row, m.msg);
    cell(row, m.logged_by);
    cell(row, m.received_by || (status.queue || status.topic ? "not yet" : "no queue"));
  });
}

function clusterCounts(status) {
  const counts = [["logged (entries of the logging map)", status.maps.logged],
                  ["received by some copy (entries of the received map)", status.maps.received]];
  for (const [copy, received] of Object.entries(status.received_by_copy)) {
    counts.push([`received by ${copy} since it started`, received]);
  }
  return counts;
}

// no cluster: each logging copy keeps its own messages, and says how many in its /health
function memoryCounts(copies) {
  return copies
    .filter((c) => c.service === "logging-service" && c.name)
    .map((c) => [`logged by ${c.name} (in its own memory)`, ((c.checks.store || {}).detail || {}).messages]);
}

// queue=kafka: the topic takes the Hazelcast queue's place (which then carries nothing)
function renderTopic(topic) {
  document.getElementById("topic-section").hidden = !topic;
  document.getElementById("queue-section").hidden = Boolean(topic);
  if (!topic) return;
  const lag = topic.partitions.reduce((sum, p) => (p.lag === null || sum === null ? null : sum + p.lag), 0);
  facts("topic", [
    ["name", topic.name], ["consumer group", topic.group], ["brokers answering", topic.brokers.join(", ")],
    ["not yet committed by the group", lag], ["written per second", topic.written_per_second],
    ["committed per second", topic.committed_per_second], ["problem", topic.error],
  ]);
  fill("partitions", topic.partitions, (row, p) => {
    row.id = "partition-" + p.partition;
    cell(row, p.partition, "num");
    cell(row, p.leader || "none");
    cell(row, p.replicas.join(", "));
    cell(row, p.in_sync.join(", "));
    cell(row, p.end_offset, "num");
    cell(row, p.committed, "num");
    cell(row, p.lag, "num");
  });
}

async function refresh() {
  try {
    const response = await fetch("/status.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (err) {
    const problem = document.getElementById("problem");
    problem.hidden = false;
    problem.textContent = `the facade does not answer: ${err.message}`;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
