// Initiates the single-node replica set "rs0" if it is not initiated yet, then reports
// whether this node is a writable primary. Safe to run any number of times.
//
// docker-compose.yml runs it as the mongo service's health check:
//   mongosh --quiet --norc --file /mongo/init-replica-set.js
// It exits non-zero until the node is primary. Change streams need a replica set.
//
// The member's address must be one that clients can resolve. Set RS_HOST to override the
// default "mongo:27017" (the compose service name).

const replicaSet = "rs0";
const memberHost =
  (typeof process !== "undefined" && process.env && process.env.RS_HOST) || "mongo:27017";

let initiated = true;
try {
  rs.status();
} catch (error) {
  if (error.codeName !== "NotYetInitialized" && error.code !== 94) {
    throw error;
  }
  initiated = false;
}

if (!initiated) {
  rs.initiate({ _id: replicaSet, members: [{ _id: 0, host: memberHost }] });
  print(`initiated replica set ${replicaSet} with member ${memberHost}`);
}

if (!db.hello().isWritablePrimary) {
  print("not primary yet");
  quit(1);
}
print("ok");
