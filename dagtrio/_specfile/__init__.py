"""DAG files: YAML or JSON documents that `dagtrio run` and `dagtrio graph` read.

`load` reads and parses a file into plain data (YAML 1.2 through ruamel.yaml's event
parser), `schema` structures that data into a `DagFile` with strict cattrs hooks and
gathers every problem with its line, `resolve` imports the actions and hooks it
names, `export` writes the graph as DOT, GraphML, Mermaid or JSON.
"""
