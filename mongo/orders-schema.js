// The orders collection as orders-live writes it: a JSON-schema validator, the two indexes the
// service reads by, and pre- and post-images for change streams (MongoDB 6.0+).
// Idempotent.
//
// Run it against the service's database (the one named in MONGO_URL), for example:
//   mongosh "mongodb://mongo:27017/orders_live?replicaSet=rs0" --quiet --file mongo/orders-schema.js
// When no database is named in the URL (mongosh then uses "test"), it uses "orders_live".
//
// The service itself also creates the same two indexes and enables pre- and post-images when
// it starts. The validator exists only here. Index names are left at their defaults so that
// they match the service's own createIndex calls.

const target = db.getName() === "test" ? db.getSiblingDB("orders_live") : db;

const validator = {
  $jsonSchema: {
    bsonType: "object",
    required: ["_id", "customer_name", "product_name", "status", "updated_at", "version"],
    properties: {
      // Drivers store a small integer as a 32-bit "int" and a large one as a 64-bit "long".
      _id: { bsonType: ["int", "long"], minimum: 1, description: "order id, from the counters collection" },
      customer_name: { bsonType: "string", minLength: 1, maxLength: 200 },
      product_name: { bsonType: "string", minLength: 1, maxLength: 200 },
      status: { enum: ["pending", "shipped", "delivered"] },
      updated_at: { bsonType: "date" },
      version: { bsonType: ["int", "long"], minimum: 1 },
    },
  },
};

const options = {
  validator: validator,
  validationLevel: "strict",
  validationAction: "error",
  changeStreamPreAndPostImages: { enabled: true },
};

const exists = target.getCollectionNames().includes("orders");
if (exists) {
  target.runCommand({ collMod: "orders", ...options });
} else {
  target.createCollection("orders", options);
}

target.orders.createIndex({ status: 1, updated_at: -1 });
target.orders.createIndex({ updated_at: -1 });

print(`${target.getName()}.orders: validator, indexes and pre/post images in place`);
