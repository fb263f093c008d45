// Initiates the demo's three single-member replica sets and waits for each primary.
// Run by the mongo-init service: mongosh --nodb --quiet /init/init-replica-sets.js
const sets = [
  { host: "mongo-source:27017", id: "source" },
  { host: "mongo-destination:27017", id: "destination" },
  { host: "mongo-meta:27017", id: "meta" },
];

for (const { host, id } of sets) {
  const admin = new Mongo(`mongodb://${host}/?directConnection=true`).getDB("admin");
  const status = admin.runCommand({ replSetGetStatus: 1 });
  if (status.ok !== 1) {
    print(`initiating replica set ${id} on ${host}`);
    const res = admin.runCommand({ replSetInitiate: { _id: id, members: [{ _id: 0, host }] } });
    if (res.ok !== 1 && res.codeName !== "AlreadyInitialized") {
      throw new Error(`replSetInitiate ${id}: ${tojson(res)}`);
    }
  }
  for (let i = 0; !admin.runCommand({ hello: 1 }).isWritablePrimary; i++) {
    if (i > 120) throw new Error(`${id} has no primary after 60 s`);
    sleep(500);
  }
  print(`replica set ${id} ready on ${host}`);
}
