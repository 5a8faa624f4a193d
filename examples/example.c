/* A few small functions that -Oz leaves room on; examples/example.ll is built from this file with
 * clang-22 -O0 -Xclang -disable-O0-optnone -g0 -S -emit-llvm examples/example.c -o examples/example.ll */
#include <stdio.h>
#include <string.h>

static const int weights[4] = {3, 5, 7, 11};
const char *labels[] = {"low", "mid", "high"};

static int weight(int x) { return weights[x & 3] * 2; }

int weighted_sum(const int *values, int n) {
  int sum = 0;
  for (int i = 0; i < n; i++)
    sum += weight(values[i]);
  return sum;
}

int grade(int score) {
  switch (score / 10) {
  case 10: case 9: return 4;
  case 8: return 3;
  case 7: return 2;
  case 6: return 1;
  default: return 0;
  }
}

unsigned checksum(const unsigned char *data, unsigned long length) {
  unsigned a = 1, b = 0;
  for (unsigned long i = 0; i < length; i++) {
    a = (a + data[i]) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

int count_words(const char *text) {
  int words = 0, inside = 0;
  for (; *text; text++) {
    if (*text == ' ' || *text == '\n' || *text == '\t') {
      inside = 0;
    } else if (!inside) {
      inside = 1;
      words++;
    }
  }
  return words;
}

void describe(char *out, int score) {
  int g = grade(score);
  const char *label = labels[g > 2 ? 2 : (g > 0 ? 1 : 0)];
  memcpy(out, label, strlen(label) + 1);
  printf("%s\n", out);
}

int max_of(const int *values, int n) {
  int best = values[0];
  for (int i = 1; i < n; i++)
    if (values[i] > best)
      best = values[i];
  return best;
}
