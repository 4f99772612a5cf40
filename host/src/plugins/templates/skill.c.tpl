// {{name}}: a switchyard skill plugin in C (wit-bindgen c + clang).
// Each skill is a name, a description (what a model reads to decide to load it),
// instructions and optional files. Plain `skills/<name>/SKILL.md` folders in the
// package need no code at all: a component is for skills made by code.
#include "skill_plugin.h"
#include <stdlib.h>
#include <string.h>

#define NAME "{{name}}"
#define DESCRIPTION "Explains what this skill does and when a model should load it."
#define INSTRUCTIONS "# {{name}}\n\nWrite the instructions a model should follow when this skill is active.\n"
#define EXAMPLE "An example reference file.\n"

void exports_switchyard_plugin_skill_list_skills(exports_switchyard_plugin_skill_list_skill_info_t *ret) {
  ret->len = 1;
  ret->ptr = calloc(1, sizeof *ret->ptr);
  skill_plugin_string_dup(&ret->ptr[0].name, NAME);
  skill_plugin_string_dup(&ret->ptr[0].description, DESCRIPTION);
}

bool exports_switchyard_plugin_skill_load_skill(skill_plugin_string_t *name,
                                                exports_switchyard_plugin_skill_skill_content_t *ret,
                                                exports_switchyard_plugin_skill_error_t *err) {
  memset(ret, 0, sizeof *ret); // the generated caller does not clear it
  bool ok = name->len == strlen(NAME) && memcmp(name->ptr, NAME, name->len) == 0;
  if (ok) {
    skill_plugin_string_dup(&ret->instructions, INSTRUCTIONS);
    ret->files.len = 1;
    ret->files.ptr = calloc(1, sizeof *ret->files.ptr);
    skill_plugin_string_dup(&ret->files.ptr[0].path, "references/example.md");
    ret->files.ptr[0].content.len = strlen(EXAMPLE);
    ret->files.ptr[0].content.ptr = (uint8_t *)strdup(EXAMPLE);
  } else {
    err->tag = SWITCHYARD_PLUGIN_TYPES_ERROR_NOT_FOUND;
    skill_plugin_string_dup(&err->val.not_found, "no such skill");
  }
  skill_plugin_string_free(name);
  return ok;
}
