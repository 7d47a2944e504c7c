"""The nodes sharing one database: this node's lease and the calls of dead nodes, and
control commands relayed to the node serving a call."""
