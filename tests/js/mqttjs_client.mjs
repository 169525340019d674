// MQTT.js over WebSocket against mqlite: subscribe to a filter, say "ready", print the payload
// of each message as a line, publish one message once told to on stdin, exit after `count`.
// Usage: node mqttjs_client.mjs URL FILTER COUNT [TOPIC PAYLOAD]
import mqtt from "mqtt";
import readline from "node:readline";

const [url, filter, count, topic, payload] = process.argv.slice(2);
let received = 0;
const client = mqtt.connect(url, { clientId: "mqttjs-" + process.pid, protocolVersion: 4 });
client.on("error", (error) => { console.error("error", error.message); process.exit(2); });
client.on("connect", () => {
  client.subscribe(filter, { qos: 1 }, (error) => {
    if (error) { console.error("subscribe", error.message); process.exit(2); }
    console.log("ready");
  });
});
client.on("message", (_topic, message) => {
  console.log(message.toString());
  received += 1;
  if (received >= Number(count)) client.end(false, () => process.exit(0));
});
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "publish" && topic) client.publish(topic, payload, { qos: 1 });
});
