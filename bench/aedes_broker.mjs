// Aedes (the Node.js MQTT broker) on 127.0.0.1:PORT, for the benchmarks: in-memory
// persistence, as packaged; no authentication. Installed by bench/brokers.py on first use.
import { createServer } from "node:net";
import { Aedes } from "aedes";

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(port, "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => broker.close(() => process.exit(0))));
}
