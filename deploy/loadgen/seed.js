// Seeds the source before mongosync starts, so that the collection copy has something to
// copy (about 100 MB in two collections). Run once by the seed service; idempotent.
const shop = db.getSiblingDB("shop");
const target = 100000;
const pad = "x".repeat(900);

for (const name of ["orders", "customers"]) {
  const coll = shop.getCollection(name);
  let n = coll.estimatedDocumentCount();
  while (n < target / 2) {
    const batch = [];
    for (let i = 0; i < 1000; i++, n++) {
      batch.push({ _id: `${name}-${n}`, n, status: "new", amount: n % 997, pad });
    }
    coll.insertMany(batch, { ordered: false, writeConcern: { w: "majority" } });
  }
  coll.createIndex({ status: 1, n: 1 });
  print(`${name}: ${coll.estimatedDocumentCount()} documents`);
}
