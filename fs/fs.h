#ifndef VMDKFS_FS_H
#define VMDKFS_FS_H

#include <stdbool.h>

int fs_info_main(int argc, char **argv);

/* Turn the base name of PATH into the flat file's name: ".vmdk" dropped,
 * characters other than [A-Za-z0-9._+-] replaced by '_', no leading '-' or
 * '.', then ".raw".  Writes at most SIZE bytes into OUT. */
void fs_flat_name(const char *path, char *out, size_t size);

#endif
