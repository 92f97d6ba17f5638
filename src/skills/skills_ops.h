/*
 * skills_ops.h — internals shared by src/skills/add.c and src/skills/evolve.c.
 */
#ifndef AIOS_SKILLS_OPS_H
#define AIOS_SKILLS_OPS_H

/* Removes a skill's adapter files: a PEFT directory's two files and the directory, or a card. */
void aios__skill_remove_files(const char *path);

#endif
