#!/usr/bin/env python3
"""The local broker's users and permissions (least privilege on the bus), as a
RabbitMQ definitions file loaded at boot. Each service has its own user that may write only the
exchanges (and, on the topic exchanges, only the routing keys) it produces, read only the
exchanges it binds from and its own queues, and declare only the standard exchanges and its own
queues. `swiftchat` is the administrator that tests, the benchmark and operators use. No `guest`.

Usage:
  rabbitmq-definitions.py ADMIN_USER ADMIN_PASSWORD > definitions.json   (the local stack: service
      users `<service>` / `swiftchat_<service>`, like the Postgres roles, plus the administrator)
  rabbitmq-definitions.py --env-dir DIR > definitions.json                (Kubernetes dev overlay:
      each service's AMQP_USER / AMQP_PASSWORD from DIR/<service>.env; no administrator)
"""
import base64
import hashlib
import json
import os
import sys

EXCHANGES = "UserEvents|MessageEvents|InstanceDelivery|DeadLetters"

# service: (exchanges it writes, exchanges it binds from, routing keys it may publish per topic exchange)
SERVICES = {
    "auth": ("UserEvents|DeadLetters", "UserEvents|DeadLetters",
             {"UserEvents": r"^user\.(registered|logged_in|signed_out|deleted)$"}),
    "users": ("UserEvents|DeadLetters", "UserEvents|DeadLetters",
              {"UserEvents": r"^(user\.updated|contact\.(added|removed))$"}),
    "messages": ("MessageEvents|InstanceDelivery|DeadLetters", "UserEvents|MessageEvents|DeadLetters",
                 {"MessageEvents": r"^(message\.stored|receipt\.updated|conversation\.[a-z_]+)$"}),
    "socket-handler": ("UserEvents|MessageEvents|InstanceDelivery|DeadLetters", "UserEvents|MessageEvents|InstanceDelivery|DeadLetters",
                       {"UserEvents": r"^presence\.changed$", "MessageEvents": r"^(message\.sent|receipt\.marked)$"}),
    "notifications": ("UserEvents|DeadLetters", "UserEvents|MessageEvents|InstanceDelivery|DeadLetters",
                      {"UserEvents": r"^notification\.changed$"}),
}


def password_hash(password: str) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def env_file(path: str) -> dict:
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def main() -> None:
    users, permissions, topic_permissions = [], [], []
    env_dir = sys.argv[2] if sys.argv[1] == "--env-dir" else None
    if env_dir is None:
        admin, admin_password = sys.argv[1], sys.argv[2]
        users.append({"name": admin, "password_hash": password_hash(admin_password),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]})
        permissions.append({"user": admin, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"})
    for service, (writes, reads, topics) in SERVICES.items():
        if env_dir:
            credentials = env_file(os.path.join(env_dir, f"{service}.env"))
            user, password = credentials["AMQP_USER"], credentials["AMQP_PASSWORD"]
        else:
            user, password = service, f"swiftchat_{service}"
        # The service's own queues: `<service namespace>.<name>`, the namespace its name.
        own = rf"{service.replace('-', '[-]')}\..*"
        users.append({"name": user, "password_hash": password_hash(password),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
        permissions.append({"user": user, "vhost": "/", "configure": rf"^({EXCHANGES}|{own})$",
                            "write": rf"^({writes}|{own})$", "read": rf"^({reads}|{own})$"})
        for exchange in ("UserEvents", "MessageEvents"):
            # A topic exchange it may not write at all gets a pattern nothing matches.
            topic_permissions.append({"user": user, "vhost": "/", "exchange": exchange,
                                      "write": topics.get(exchange, "^$"), "read": ".*"})
    json.dump({"users": users, "vhosts": [{"name": "/"}], "permissions": permissions,
               "topic_permissions": topic_permissions}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
