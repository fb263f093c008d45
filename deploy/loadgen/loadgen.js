// A steady write load on the source, so that mongosync's change event application, the
// verifier's rechecks and the oplog capture all have work: inserts, updates, replaces and
// deletes, and a collection created and dropped every five minutes (DDL). Runs until the
// container stops. LOADGEN_WRITES_PER_SECOND sets the insert rate (default 100).
const shop = db.getSiblingDB("shop");
const events = shop.events;
const customers = shop.customers;
const perSecond = Number(process.env.LOADGEN_WRITES_PER_SECOND || 100);
const pad = "y".repeat(500);
events.createIndex({ seq: 1 });
let seq = events.find().sort({ seq: -1 }).limit(1).toArray().map((d) => d.seq + 1)[0] || 0;

for (let round = 0; ; round++) {
  const started = Date.now();
  const batch = [];
  for (let i = 0; i < perSecond; i++, seq++) {
    batch.push({ _id: `event-${seq}`, seq, status: "new", amount: seq % 997, pad });
  }
  events.insertMany(batch, { ordered: false });
  // updates, a replace and deletes on documents a few seconds old
  events.updateMany({ seq: { $gte: seq - 5 * perSecond, $lt: seq - 4 * perSecond } }, { $set: { status: "paid" }, $inc: { amount: 1 } });
  events.replaceOne({ seq: seq - 10 * perSecond }, { seq: seq - 10 * perSecond, status: "replaced", amount: 0 });
  events.deleteMany({ seq: { $lt: seq - 60 * perSecond } });
  // and the seeded collection (seed.js) keeps changing too
  customers.updateOne({ _id: `customers-${(round * 7) % 50000}` }, { $inc: { amount: 1 }, $set: { status: "active" } });
  if (round % 300 === 0) {
    shop.getCollection(`scratch_${round}`).insertOne({ round });
    if (round > 0) shop.getCollection(`scratch_${round - 300}`).drop();
  }
  const spent = Date.now() - started;
  if (spent < 1000) sleep(1000 - spent);
}
