---
name: {{name}}
description: Explains what this skill does and when a model should load it.
---

# {{name}}

Write the instructions a model should follow when this skill is active.
