#include <linux/kvm.h>
#include <cstdio>
int main(){printf("%zu %zu %zu\n", sizeof(kvm_cpuid2), sizeof(kvm_msrs), offsetof(kvm_cpuid2, entries));}