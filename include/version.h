#pragma once
#define MAILFS_VERSION "0.1.0"
